"""The main job: the seed's whole pipeline in one call.

    fine-tune the teacher -> evaluate it -> teaching materials ->
    distill each student -> evaluate it -> time every model -> report

Every stage writes into one directory and is skipped when its output is
already complete, so an interrupted run picks up where it stopped.  The
report (`report.md`, `report.json`, `report.png`) puts each model's dev
score against its items/second, with the accuracy/speed Pareto frontier
marked, beside the seed's BERT-base figures.
"""

import dataclasses
import json
import logging
import os
import platform
import time
import typing

from kbert import runs
from kbert.atomic import atomic_output, refuse_overlap, write_json, write_text_atomic
from kbert.checks import check_option_types
from kbert.errors import ConfigError
from kbert.options import DistillOptions, FinetuneOptions, MaterialsOptions
from kbert.registry import STUDENTS

logger = logging.getLogger(__name__)

# The seed pipeline's BERT-base teacher on SST-2 (its evaluate_glue.py and
# generate_materials.py logs): dev accuracy, and materials throughput on
# the train set (67349 sentences in 6:28), on the seed's own machine, a GPU.
SEED_BERT_BASE = {"task": "SST-2", "accuracy": 0.9151376, "items_per_second": 173.30,
                  "machine": "the seed pipeline's GPU, not this machine"}

# Fine-tuning settings of each mode; the learning rate and the epochs come
# from the checkpoint's recipe (`kbert.presets.recipe`: one epoch for SST-2,
# three for CoLA and MRPC).  The demo caps the training set at 8,000
# examples and the length at 64.  (With one epoch everywhere, the demo's
# CoLA teacher answered one label to every sentence, MCC 0.0, and its MRPC
# teacher stayed near the majority share.)
FINETUNE = {
    "demo": {"max_train_examples": 8000, "max_seq_len": 64},
    "full": {"max_seq_len": 128},
}
# The distillation options an entry of `students` may set for its student
# alone (`transformer:layers=4:epochs=3`); the pipeline sets the rest
# (seed, transfer set, holdout, selection) the same for every student, so
# that their scores compare.
STUDENT_KEYS = ("epochs", "batch_size", "learning_rate", "alpha", "loss", "temperature", "units", "pooling",
                "pairs", "layers", "hidden", "heads", "intermediate", "layer_map", "narrow_start", "hidden_weight",
                "attention_weight", "variant", "embedding", "embedding_dim", "embedding_rows", "pooled_weight")
# Rows timed one at a time for the batch-1 latency.
LATENCY_ROWS = 200


@dataclasses.dataclass(frozen=True)
class StudentEntry:
    """One entry of `PipelineOptions.students`: a registered student and
    the distillation options set for it alone."""

    name: str
    options: tuple = ()  # ((DistillOptions field, value), ...)

    @classmethod
    def parse(cls, text):
        """`name[:key=value]...`, e.g. "transformer:layers=4:epochs=3"."""
        name, *pairs = text.strip().split(":")
        if name not in STUDENTS:
            raise ConfigError(f"--students: unknown student {name!r} in {text!r}; registered: "
                              f"{', '.join(STUDENTS)}")
        hints = typing.get_type_hints(DistillOptions)
        options = []
        for pair in pairs:
            key, sep, raw = pair.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in STUDENT_KEYS:
                raise ConfigError(f"--students: {pair!r} in {text!r} is not key=value with a key of "
                                  f"{', '.join(STUDENT_KEYS)}")
            kind = hints[key]
            try:
                value = {int: int, float: float, str: str}[kind](raw.strip())
            except ValueError:
                raise ConfigError(f"--students: {key} in {text!r} must be {'an int' if kind is int else 'a number'}"
                                  f", got {raw!r}") from None
            options.append((key, value))
        if len(dict(options)) != len(options):
            raise ConfigError(f"--students: {text!r} sets an option twice")
        return cls(name, tuple(options))

    @property
    def label(self):
        """The student's name in the report and its directory: the
        registered name, then each option set for it ("transformer-layers4")."""
        return "-".join([self.name] + [f"{key.replace('_', '-')}{value}" for key, value in self.options])


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    """What `run_pipeline` does.

    Attributes:
        task: a GLUE classification task.
        checkpoint: the teacher's starting checkpoint (preset, original or HF).
        full: all of the task's training data and the checkpoint's full
            recipe, instead of the demo's 8000-example, one-epoch subset.
        seed: seeds fine-tuning, augmentation and distillation.
        augment: augmented copies per training sentence for distillation.
        neighbours, p_neighbour: nearest-neighbour word replacement in
            the augmentation (`MaterialsOptions`).
        unlabeled: the user's own text files for the teacher to label
            (`MaterialsOptions.unlabeled`).
        students: the students distilled from the one set of materials,
            each a registered name (`kbert.registry.STUDENTS`) with
            optional `:key=value` distillation options of its own
            ("transformer:layers=4"); the first is written to `student/`,
            the others to `student-LABEL/`.
        pairs: how the students that can read a sentence pair's sides
            apart (the BiLSTM) read pairs, "joint" or "siamese".
        embedding: the small students' start, "teacher" or "static" (the
            materials then store static vectors); a student cut from the
            teacher starts from the teacher's own layers.
    """

    task: str = "SST-2"
    checkpoint: str = "minilm-l6"
    full: bool = False
    seed: int = 42
    augment: int = 0
    neighbours: int = 0
    p_neighbour: float = 0.1
    unlabeled: tuple = ()
    # The BiLSTM, fast: on the demo's held-out train rows (seed 42, 8
    # epochs) it agreed with the teacher on 0.9554 of them at its best
    # epoch, against the CNN's 0.9451 (one standard error 0.004),
    # benchmarks/results/demo-students-sst-2.md.  The transformer, close to
    # the teacher: 0.9611 at two epochs, 2.0x the teacher's speed
    # (benchmarks/results/transformer-student-sst-2.md).
    students: tuple = ("bilstm", "transformer")
    pairs: str = "joint"
    embedding: str = "teacher"

    def __post_init__(self):
        check_option_types(self)
        if not self.students:
            raise ConfigError("--students names no student")
        labels = [entry.label for entry in self.student_entries()]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"--students names a student twice: {', '.join(self.students)}")
        # The stages' own checks, before anything runs.
        self.materials_options()
        for entry in self.student_entries():
            self.distill_options(entry)
        if self.augment < 0:
            raise ConfigError(f"--augment must be 0 or more, got {self.augment}")

    @property
    def mode(self):
        return "full" if self.full else "demo"

    def student_entries(self):
        return [StudentEntry.parse(text) for text in self.students]

    def materials_options(self):
        static = any(self.distill_options(entry).embedding == "static" for entry in self.student_entries())
        return MaterialsOptions(augment=self.augment, seed=self.seed, neighbours=self.neighbours,
                                p_neighbour=self.p_neighbour, static_embedding=static, unlabeled=self.unlabeled)

    def distill_options(self, entry):
        """`DistillOptions` of one student entry: its own options over the
        run's, `pairs` and `embedding` only where the student takes them."""
        spec = STUDENTS[entry.name]
        shared = {"epochs": dict(zip(("demo", "full"), spec.pipeline_epochs))[self.mode]}
        if spec.pairs_apart:
            shared["pairs"] = self.pairs
        if spec.start == "embedding":
            shared["embedding"] = self.embedding
        return DistillOptions(seed=self.seed, student=entry.name, **{**shared, **dict(entry.options)})


@dataclasses.dataclass
class Stage:
    name: str
    seconds: float


def _timed(stages, name, function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    stages.append(Stage(name, time.perf_counter() - started))
    logger.info("%s: %.1f s", name, stages[-1].seconds)
    return result


def measure_speed(model_dir, task, data_dir, batch_size=32, repeats=2):
    """(items/second, batch-1 seconds) of a run (teacher or student) on the
    task's dev sentences: length-bucketed batches of `batch_size` after a
    warm-up pass (jit excluded), best of `repeats`; and the median time to
    classify one sentence alone, over the first `LATENCY_ROWS`."""
    from kbert.evaluation import encode_examples
    from kbert.glue import get_processor
    from kbert.inference import latency_one_by_one, time_bucketed

    model, record = runs.load_model(model_dir)
    examples = get_processor(task).dev_examples(data_dir)
    encoded = encode_examples(runs.load_tokenizer(model_dir, record, model), examples, record.max_seq_len)
    arrays = [encoded.token_ids, encoded.segment_ids][: len(model.inputs)]
    _, seconds = time_bucketed(model, arrays, encoded.lengths, batch_size=batch_size, repeats=repeats)
    latency = latency_one_by_one(model, arrays, encoded.lengths, count=LATENCY_ROWS)
    return len(examples) / seconds, latency


def machine():
    """The machine the report's figures ran on: CPU model and cores, the
    backend and its devices."""
    import keras

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:  # not Linux
        pass
    backend = keras.backend.backend()
    if backend == "jax":  # keras.distribution lists devices on JAX alone
        devices = sorted({device.split(":")[0] for device in keras.distribution.list_devices()})
    elif backend == "torch":
        import torch

        devices = ["gpu"] if torch.cuda.is_available() else ["cpu"]
    else:
        import tensorflow as tf

        devices = ["gpu"] if tf.config.list_physical_devices("GPU") else ["cpu"]
    return f"{cpu}, {os.cpu_count()} cores; {backend} on {', '.join(devices)}"


def pareto_frontier(points):
    """The names of `points` ({name: (items/s, score)}) that no other point
    beats on both: at least as fast and as good, and better on one."""
    def beaten(a):
        return any(b[0] >= a[0] and b[1] >= a[1] and b != a for b in points.values())

    return [name for name, point in points.items() if not beaten(point)]


def run_pipeline(options, output="runs/demo", *, data_dir=None):
    """Run every stage of `options` (`PipelineOptions`) into `output`;
    returns the report dict (also written)."""
    from kbert.corpus import expand_inputs
    from kbert.distillation import distill
    from kbert.evaluation import evaluate
    from kbert.finetuning import finetune
    from kbert.glue import get_processor, resolve_data_dir
    from kbert.materials import materials_from_run

    processor = get_processor(options.task)
    if processor.is_regression:
        raise ConfigError(f"{processor.name} is a regression task; the pipeline's students distil classifiers only")
    data_dir = resolve_data_dir(data_dir)
    # Refused before the first stage: the run's files must not land among what it reads.
    refuse_overlap(output, [processor.task_dir(data_dir), *expand_inputs(options.unlabeled, "--unlabeled")], flag="--output",
                   error=ConfigError)
    os.makedirs(output, exist_ok=True)
    teacher_options = FinetuneOptions(task=processor.name, checkpoint=options.checkpoint, seed=options.seed,
                                      **FINETUNE[options.mode])
    teacher_dir = os.path.join(output, "teacher")
    materials_dir = os.path.join(output, "materials")
    entries = options.student_entries()
    student_dirs = [os.path.join(output, "student" if i == 0 else f"student-{entry.label}")
                    for i, entry in enumerate(entries)]
    stages = []

    # resume=True: each stage continues what an interrupted call left, or starts.
    teacher = _timed(stages, "finetune", finetune, teacher_options, teacher_dir, data_dir=data_dir,
                     cache_dir=os.path.join(output, "features"), resume=True)
    evaluations = {"teacher": _timed(stages, "evaluate teacher", evaluate, teacher_dir, data_dir=data_dir)}
    _timed(stages, "materials", materials_from_run, teacher_dir, materials_dir,
           options.materials_options(), data_dir=data_dir)
    for entry, student_dir in zip(entries, student_dirs):
        _timed(stages, f"distill {entry.label}", distill, materials_dir, student_dir,
               options.distill_options(entry), resume=True)
        evaluations[entry.label] = _timed(stages, f"evaluate {entry.label}", evaluate, student_dir,
                                          data_dir=data_dir)
    speeds = {"teacher": _timed(stages, "time teacher", measure_speed, teacher_dir, processor.name, data_dir)}
    for entry, student_dir in zip(entries, student_dirs):
        speeds[entry.label] = _timed(stages, f"time {entry.label}", measure_speed, student_dir, processor.name,
                                     data_dir)

    models = [_model_row("teacher", f"teacher ({options.checkpoint})", teacher_dir, output, processor,
                         evaluations["teacher"], speeds["teacher"])]
    for entry, student_dir in zip(entries, student_dirs):
        title = STUDENTS[entry.name].title + (f" ({entry.label})" if entry.options else "")
        models.append(_model_row(entry.label, title, student_dir, output, processor, evaluations[entry.label],
                                 speeds[entry.label]))
    report = _report(processor, options, teacher, models, stages)
    _write_report(output, report)
    return report


def _model_row(name, title, directory, output, processor, evaluation, speed):
    items_per_second, latency = speed
    return {
        "name": name,
        "title": title,
        "directory": os.path.relpath(directory, output),
        "metrics": evaluation["metrics"],
        "score": evaluation["metrics"]["eval_" + processor.score_metric],
        "items_per_second": items_per_second,
        "latency_ms": latency * 1000.0,
    }


def _report(processor, options, teacher, models, stages):
    import keras

    rate = models[0]["items_per_second"]
    frontier = pareto_frontier({m["name"]: (m["items_per_second"], m["score"]) for m in models})
    for model in models:
        model["speedup"] = model["items_per_second"] / rate
        model["frontier"] = model["name"] in frontier
    return {
        "task": processor.name,
        "mode": options.mode,
        "backend": keras.backend.backend(),
        "machine": machine(),
        "teacher": options.checkpoint,
        "students": list(options.students),
        "score_metric": processor.score_metric,
        "finetune_options": teacher.options,
        "models": models,
        "frontier": frontier,
        "stage_seconds": {s.name: round(s.seconds, 2) for s in stages},
        "total_seconds": round(sum(s.seconds for s in stages), 2),
        "seed_bert_base": SEED_BERT_BASE,
    }


def _write_report(output, report):
    write_json(os.path.join(output, "report.json"), report)
    # The task's own GLUE metrics beside accuracy (CoLA: MCC, MRPC: F1).
    extra = [k for k in report["models"][0]["metrics"] if k != "eval_accuracy"]
    head = "".join(f" dev {k[len('eval_'):]} |" for k in extra)

    def row(model):
        cells = "".join(f" {model['metrics'][k]:.4f} |" for k in extra)
        mark = " *" if model["frontier"] else ""
        return (f"| {model['title']}{mark} | {model['metrics']['eval_accuracy']:.4f} |{cells} "
                f"{model['items_per_second']:.1f} | {model['speedup']:.1f}x | {model['latency_ms']:.2f} | "
                f"`{model['directory']}` |")

    seed = report["seed_bert_base"]
    lines = [
        f"# kbert {report['mode']} run: {report['task']}",
        "",
        f"Teacher `{report['teacher']}` fine-tuned with {json.dumps(report['finetune_options'])}.",
        f"Machine: {report['machine']}.",
        "",
        f"| model | dev accuracy |{head} items/s (dev, batch 32, bucketed) | speed-up | batch-1 ms (median) "
        "| directory |",
        "|---|---|" + "---|" * len(extra) + "---|---|---|---|",
        *(row(model) for model in report["models"]),
        "",
        f"\\* on the accuracy/speed Pareto frontier (dev {report['score_metric']} against items/s): no other "
        "model here is both faster and better.",
        "",
        f"Reference, not measured here: the seed's BERT-base on SST-2, dev accuracy {seed['accuracy']:.4f} at "
        f"{seed['items_per_second']:.1f} items/s ({seed['machine']}).",
        "",
        "| stage | seconds |",
        "|---|---|",
        *(f"| {k} | {v:.1f} |" for k, v in report["stage_seconds"].items()),
        f"| total | {report['total_seconds']:.1f} |",
        "",
    ]
    write_text_atomic(os.path.join(output, "report.md"), "\n".join(lines))
    _plot(output, report)


def _plot(output, report):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    metric = report["score_metric"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model in report["models"]:
        x, y = model["items_per_second"], model["score"]
        ax.scatter([x], [y], s=60, marker="o" if model["frontier"] else "x")
        ax.annotate(model["name"], (x, y), textcoords="offset points", xytext=(6, 4))
    front = sorted((m["items_per_second"], m["score"]) for m in report["models"] if m["frontier"])
    ax.plot(*zip(*front), linestyle="--", alpha=0.6, label="Pareto frontier")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # decades only: no crowded labels
    ax.set_xlabel("items / second (dev, batch 32, log scale)")
    ax.set_ylabel(f"{report['task']} dev {metric}")
    ax.set_title(f"kbert {report['mode']}: {metric} against speed\n{report['machine']}", fontsize=9)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with atomic_output(os.path.join(output, "report.png"), suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
