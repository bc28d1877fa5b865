"""The main job: the seed's whole pipeline in one call.

    fine-tune the teacher -> evaluate it -> teaching materials ->
    distill the CNN student -> evaluate it -> time both -> report

Every stage writes into one directory and is skipped when its output is
already complete, so an interrupted run picks up where it stopped.  The
report (`report.md`, `report.json`, `report.png`) puts accuracy against
items/second for the teacher and the student, beside the seed's BERT-base
figures.
"""

import dataclasses
import json
import logging
import os
import time

from kbert.atomic import atomic_output, write_json, write_text_atomic
from kbert.finetune import FinetuneOptions

logger = logging.getLogger(__name__)

# The seed pipeline's BERT-base teacher on SST-2 (its evaluate_glue.py and
# generate_materials.py logs): dev accuracy, and materials throughput on
# the train set (67349 sentences in 6:28).
SEED_BERT_BASE = {"task": "SST-2", "accuracy": 0.9151376, "items_per_second": 173.30}

# Demo defaults: fit in ~25 minutes on 2 CPU cores.  --full: the recipes of
# issue "GLUE" (the HF-transformers baselines' settings).
DEMO = {"max_train_examples": 8000, "epochs": 1, "learning_rate": 5e-5, "max_seq_len": 64}
FULL = {
    "SST-2": {"epochs": 1, "learning_rate": 3e-5, "max_seq_len": 128},
    "CoLA": {"epochs": 3, "learning_rate": 5e-5, "max_seq_len": 128},
    "MRPC": {"epochs": 3, "learning_rate": 5e-5, "max_seq_len": 128},
}
DISTILL = {"demo": {"epochs": 4}, "full": {"epochs": 10}}


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


def measure_items_per_second(model_dir, task, data_dir, batch_size=32, repeats=2):
    """Inference items/second of a run (teacher or student) on the task's
    dev sentences, length-bucketed, after a warm-up pass (jit excluded)."""
    from kbert.batching import time_bucketed
    from kbert.evaluation import encode_examples, load_run_model
    from kbert.glue import get_processor
    from kbert.tokenization import Tokenizer

    model, run, num_inputs = load_run_model(model_dir)
    processor = get_processor(task)
    examples = processor.dev_examples(data_dir)
    max_seq_len = run.get("max_seq_len") or run["options"]["max_seq_len"]
    cased = run.get("cased", run.get("options", {}).get("cased", False))
    encoded = encode_examples(Tokenizer.from_vocab_file(os.path.join(model_dir, "vocab.txt"), cased=cased),
                              examples, max_seq_len)
    arrays = [encoded.token_ids, encoded.segment_ids][:num_inputs]
    _, seconds = time_bucketed(model, arrays, encoded.lengths, batch_size=batch_size, repeats=repeats)
    return len(examples) / seconds


def run_pipeline(task="SST-2", output="runs/demo", *, checkpoint="minilm-l6", full=False, data_dir=None,
                 seed=42, augment=0):
    """Run every stage for `task`; returns the report dict (also written)."""
    from kbert.distill import distill
    from kbert.evaluation import evaluate
    from kbert.finetune import finetune
    from kbert.glue import get_processor, resolve_data_dir
    from kbert.materials import materials_from_run

    processor = get_processor(task)
    data_dir = resolve_data_dir(data_dir)
    os.makedirs(output, exist_ok=True)
    recipe = FULL.get(processor.name, FULL["MRPC"]) if full else DEMO
    options = FinetuneOptions(task=processor.name, checkpoint=checkpoint, seed=seed, **recipe)
    teacher_dir = os.path.join(output, "teacher")
    materials_dir = os.path.join(output, "materials")
    student_dir = os.path.join(output, "student")
    stages = []

    _timed(stages, "finetune", finetune, options, teacher_dir, data_dir=data_dir,
           cache_dir=os.path.join(output, "features"), resume=os.path.exists(os.path.join(teacher_dir, "run.json")))
    teacher_eval = _timed(stages, "evaluate teacher", evaluate, teacher_dir, data_dir=data_dir)
    _timed(stages, "materials", materials_from_run, teacher_dir, materials_dir, data_dir=data_dir,
           augment=augment, seed=seed)
    _timed(stages, "distill", distill, materials_dir, student_dir,
           resume=os.path.exists(os.path.join(student_dir, "checkpoint", "state.json")),
           seed=seed, **DISTILL["full" if full else "demo"])
    student_eval = _timed(stages, "evaluate student", evaluate, student_dir, data_dir=data_dir)
    teacher_rate = _timed(stages, "time teacher", measure_items_per_second, teacher_dir, processor.name, data_dir)
    student_rate = _timed(stages, "time student", measure_items_per_second, student_dir, processor.name, data_dir)

    report = _report(processor, options, full, teacher_eval, student_eval, teacher_rate, student_rate, stages)
    _write_report(output, report)
    return report


def _report(processor, options, full, teacher_eval, student_eval, teacher_rate, student_rate, stages):
    import keras

    metric = "eval_accuracy"
    return {
        "task": processor.name,
        "mode": "full" if full else "demo",
        "backend": keras.backend.backend(),
        "teacher": options.checkpoint,
        "finetune_options": dataclasses.asdict(options),
        "teacher_accuracy": teacher_eval["metrics"].get(metric),
        "student_accuracy": student_eval["metrics"].get(metric),
        "teacher_metrics": teacher_eval["metrics"],
        "student_metrics": student_eval["metrics"],
        "teacher_items_per_second": teacher_rate,
        "student_items_per_second": student_rate,
        "student_speedup": student_rate / teacher_rate,
        "stage_seconds": {s.name: round(s.seconds, 2) for s in stages},
        "total_seconds": round(sum(s.seconds for s in stages), 2),
        "seed_bert_base": SEED_BERT_BASE,
    }


def _write_report(output, report):
    write_json(os.path.join(output, "report.json"), report)
    # The task's own GLUE metrics beside accuracy (CoLA: MCC, MRPC: F1).
    extra = [k for k in report["teacher_metrics"] if k != "eval_accuracy"]
    head = "".join(f" dev {k[len('eval_'):]} |" for k in extra)

    def row(name, accuracy, metrics, rate):
        cells = "".join(f" {metrics[k]:.4f} |" if metrics else " - |" for k in extra)
        return f"| {name} | {accuracy:.4f} |{cells} {rate:.1f} |"

    lines = [
        f"# kbert {report['mode']} run: {report['task']}",
        "",
        f"Teacher `{report['teacher']}` fine-tuned with {json.dumps(report['finetune_options'])}; "
        f"backend {report['backend']}.",
        "",
        f"| model | dev accuracy |{head} items/s (dev, batch 32, bucketed) |",
        "|---|---|" + "---|" * len(extra) + "---|",
        row(f"teacher ({report['teacher']})", report["teacher_accuracy"], report["teacher_metrics"],
            report["teacher_items_per_second"]),
        row("CNN student", report["student_accuracy"], report["student_metrics"], report["student_items_per_second"]),
        row("seed BERT-base (reference, SST-2)", SEED_BERT_BASE["accuracy"], None, SEED_BERT_BASE["items_per_second"]),
        "",
        f"Student speed-up over the teacher: {report['student_speedup']:.1f}x.",
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

    points = [
        ("teacher", report["teacher_items_per_second"], report["teacher_accuracy"]),
        ("CNN student", report["student_items_per_second"], report["student_accuracy"]),
        ("seed BERT-base", SEED_BERT_BASE["items_per_second"], SEED_BERT_BASE["accuracy"]),
    ]
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, x, y in points:
        ax.scatter([x], [y], s=60)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 4))
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # decades only: no crowded labels
    ax.set_xlabel("items / second (log scale)")
    ax.set_ylabel(f"{report['task']} dev accuracy")
    ax.set_title(f"kbert {report['mode']}: accuracy against speed")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with atomic_output(os.path.join(output, "report.png"), suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
