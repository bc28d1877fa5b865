"""Rows to measure, and the subprocesses that measure them.

A row is one (impl, backend, model, batch, mode, variant); its record adds
the measurement, or a "skipped" reason.  Keras fixes its backend once per
process, so every (implementation, backend) runs in a subprocess of its own
with KERAS_BACKEND set (kbert and kbert-student share one per backend): the
parent writes a spec, starts `benchmarks/throughput.py --worker SPEC`, and
reads back the records the worker saved after each row.  An implementation
that is not installed, or a row that fails, becomes a skipped record; the
run goes on.
"""

import gc
import importlib.util
import itertools
import json
import logging
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

from benchmarks.throughput_parts.builders import BUILDERS
from benchmarks.throughput_parts.flops import MINILM, MINILM_PACKAGE, model_fits
from benchmarks.throughput_parts.timing import plan_batches, slice_batches, timed_passes, warm_up, work_done
from kbert.atomic import read_json, write_json, write_text_atomic
from kbert.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

# The script a worker runs: the entry beside this package.
ENTRY = pathlib.Path(__file__).resolve().parents[1] / "throughput.py"

ROW_KEYS = ("impl", "backend", "model", "batch", "mode", "variant")

# Modules each implementation needs (the Keras backend's module is added).
REQUIREMENTS = {
    "kbert": ("keras",),
    "kbert-student": ("keras", "kbert.student"),
    "transformers": ("torch", "transformers"),
    "keras-hub": ("keras", "keras_hub"),
}
KERAS_IMPLS = ("kbert", "kbert-student", "keras-hub")


def blank_record(row, **fields):
    """The record of `row` with no measurement, updated with `fields`."""
    record = {k: row[k] for k in ROW_KEYS}
    record.update(seq_len=None, items_per_second=None, gflops_per_second=None, skipped=None)
    record.update(fields)
    return record


def write_records(path, value):
    """JSON with the records' keys in table order, as `results/*.json` hold them.

    (`kbert.atomic.write_json` sorts keys, which would scatter a record's
    identity among its measurements.)  A missing directory is created: a
    results path may name a new one.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_text_atomic(path, json.dumps(value, indent=1) + "\n")


# ---------------------------------------------------------------------------
# In the worker: measures rows in this process
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
    """What `throughput.py --worker SPEC` runs: the spec's rows, saved after each."""
    spec = read_json(spec_path, error=ConfigError, what="worker spec")
    with np.load(spec["inputs"]) as data:
        arrays = {k: data[k] for k in data.files}
    measure_rows(
        spec["rows"],
        arrays,
        max_len=spec["max_len"],
        min_seconds=spec["min_seconds"],
        progress=spec.get("progress", True),
        # An object, as read_json wants; the parent unwraps it.
        on_record=lambda records: write_records(spec["out"], {"records": records}),
    )
    return 0


# ---------------------------------------------------------------------------
# In the parent: plans rows, runs one subprocess per (implementation, backend)
# ---------------------------------------------------------------------------


def impl_backends(impl, backends):
    return ("torch",) if impl == "transformers" else tuple(backends)


def variant_applies(impl, backend, variant):
    """Variants are kbert teachers' only, and xla is TensorFlow's only (`kbert.variants`)."""
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
        write_json(spec_path, spec)
        env = dict(os.environ, KERAS_BACKEND=backend if family != "transformers" else "torch")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        logger.info("starting %s on %s: %d rows", family, backend, len(rows))
        command = [sys.executable, str(ENTRY), "--worker", spec_path]
        if logger.getEffectiveLevel() <= logging.DEBUG:
            command.append("--verbose")
        code = subprocess.call(command, env=env)
        records = []
        if os.path.exists(out_path):
            records = read_json(out_path, error=DataError, what="worker records")["records"]
    if code != 0 or len(records) < len(rows):
        logger.warning("%s on %s: worker exited with code %d after %d of %d rows",
                       family, backend, code, len(records), len(rows))
    reason = f"worker exited with code {code} before this row"
    return records + [blank_record(row, skipped=reason) for row in rows[len(records):]]
