"""Export a trained run (teacher or student) for serving: `kbert export`.

    kbert export --model runs/sst2 --output serve/sst2 --format tf_saved_model
    kbert export --model runs/sst2/student --output serve/student --format onnx

The artifact is written by Keras 3's own `model.export`: it takes the
model's int32 inputs ([batch, length] token ids, and segment ids for a
teacher) and returns the logits [batch, num_labels]; a token head's
(`kbert finetune --task conll`) [batch, length, num_labels], a span head's
(`--task squad`) start and end logits [batch, length] each.  Beside it, so that a
server can tokenize: `vocab.txt` and `serving.json` (the inputs' names and
shapes, the casing, `max_seq_len`, the label names in logit order, the
task, and the check below).

Which Keras backend exports which format (Keras 3.15):

    format           tensorflow          jax                          torch
    tf_saved_model   yes                 yes (jax2tf)                 no (Keras needs torch_xla)
    onnx             yes (tf2onnx)       yes (jax2onnx), length fixed no (the TorchScript exporter
                                         at max_seq_len               fails on LayerNormalization)

A run's model loads on any backend, so `KERAS_BACKEND=tensorflow kbert
export ...` exports a run trained on PyTorch.  Before the artifact is
moved into place it is run in its own runtime (`tf.saved_model.load`,
`onnxruntime`) on probe sentences, padded and unpadded, and its logits are
compared with the Keras model's: an artifact that disagrees by more than
`TOLERANCE` is refused, never written.  `onnx` needs the `export` extra
(`pip install 'kbert[export]'`: onnxruntime, tf2onnx, jax2onnx).
"""

import logging
import os
import shutil

import numpy as np

from kbert import runs
from kbert.atomic import atomic_directory, read_json, write_json
from kbert.errors import ConfigError, DataError, KbertError

logger = logging.getLogger(__name__)

FORMATS = ("tf_saved_model", "onnx")
EXPORTED_BY = {"tf_saved_model": ("tensorflow", "jax"), "onnx": ("tensorflow", "jax")}
ARTIFACTS = {"tf_saved_model": "saved_model", "onnx": "model.onnx"}
MANIFEST = "serving.json"
TOLERANCE = 1e-4
PROBES = [
    "a gripping , beautifully acted film .",
    "dull .",
    "the plot goes nowhere and the jokes fall flat , but the actors seem to be having fun anyway .",
    "it 's not a masterpiece , yet it earns every one of its quiet , patient moments " * 6,
]


def _signature(model, length):
    import keras

    specs = [keras.InputSpec(shape=(None, length), dtype="int32", name=tensor.name) for tensor in model.inputs]
    return [specs] if len(specs) > 1 else specs  # a student takes one tensor, not a list


def _jax2tf_options(model):
    """jax2tf traces one symbolic batch b and length t shared by every input;
    the position table bounds t, and nothing here needs gradients."""
    shapes = [["(b, t)"] * len(model.inputs)] if len(model.inputs) > 1 else ["(b, t)"]
    options = {"polymorphic_shapes": shapes, "with_gradient": False}
    config = getattr(model, "bert_config", None)
    if config is not None:
        options["polymorphic_constraints"] = [f"t <= {config.max_position_embeddings}"]
    return options


def run_artifact(directory, arrays):
    """Logits of the exported artifact in `directory` (as `export_run`
    wrote it) on `arrays` (the model's inputs, in order), run in the
    artifact's own runtime: one array, or for a span head's artifact the
    list [start logits, end logits].

    Raises:
        DataError: `serving.json` is missing or names no format and artifact
            that `export_run` writes (its artifact is always the fixed name
            inside `directory`, so no path in it leads elsewhere), or the
            runtime cannot load or run the artifact.
    """
    manifest_file = os.path.join(directory, MANIFEST)
    manifest = read_json(manifest_file, error=DataError, what="serving manifest")
    format = manifest.get("format")
    if format not in FORMATS:
        raise DataError(f"{manifest_file}: format must be one of {', '.join(FORMATS)}, got {format!r}")
    if manifest.get("artifact") != ARTIFACTS[format]:
        raise DataError(f"{manifest_file}: artifact must be {ARTIFACTS[format]!r} for {format}, "
                        f"got {manifest.get('artifact')!r}")
    path = os.path.join(directory, ARTIFACTS[format])
    if not os.path.exists(path):
        raise DataError(f"{path}: no such {format} artifact")
    arrays = [np.asarray(a, np.int32) for a in arrays]
    if format == "tf_saved_model":
        import tensorflow as tf

        def run():
            loaded = tf.saved_model.load(path)  # held: its variables die with it
            tensors = [tf.constant(a) for a in arrays]
            out = loaded.serve(tensors if len(tensors) > 1 else tensors[0])
            return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else np.asarray(out)
    else:
        def run():
            import onnxruntime

            session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
            feed = {spec.name: a for spec, a in zip(session.get_inputs(), arrays)}
            out = session.run(None, feed)
            return out if len(out) > 1 else out[0]
    return _exporter_step(f"{path}: the {format} runtime", run)


def _exporter_step(what, step, hint=""):
    """`step()`, with a failure of the exporter or runtime underneath (they
    raise their own types: TensorFlow's InvalidArgumentError, onnxruntime's
    Fail and NoSuchFile, jax2onnx's) as a DataError saying which one failed
    and its first line."""
    try:
        return step()
    except KbertError:
        raise
    except Exception as e:  # noqa: BLE001 -- a third-party boundary: report, never pass through
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        # TensorFlow's graph errors open with "Graph execution error:"; the
        # cause is the last line that says "error: ..." (MLIR's diagnostics).
        causes = [line for line in lines if "error:" in line.lower() and not line.lower().endswith("error:")]
        first = causes[-1] if causes else lines[0] if lines else ""
        raise DataError(f"{what} failed: {type(e).__name__}: {first[:300]}{hint}") from e


class _Served:
    """What an export reads of a run: its model, record and tokenizer,
    whether it reads pairs, and its output's names and description."""

    def __init__(self, run_dir):
        from kbert.options import HEAD_TASKS, head_task
        from kbert.predict import load_classifier

        record = runs.complete_run(run_dir)
        if head_task(record.task):
            # A token or span head: its outputs are per position.
            self.model, self.record = runs.load_model(run_dir, record)
            self.tokenizer = runs.load_tokenizer(run_dir, record, self.model)
            self.pairs = record.task == "squad"  # (question, context)
            self.labels, self.is_regression = tuple(record.labels or ()), False
            self.output = ("logits [batch, length, num_labels]" if HEAD_TASKS[record.task] == "token"
                           else "start_logits [batch, length], end_logits [batch, length]")
        else:
            classifier = load_classifier(run_dir)
            self.model, self.record, self.tokenizer = classifier.model, classifier.record, classifier.tokenizer
            self.pairs, self.labels = classifier.pairs, classifier.labels
            self.is_regression, self.output = classifier.is_regression, "logits [batch, num_labels]"


def _outputs(value):
    """An artifact's or a model's outputs as a list of float arrays."""
    return [np.asarray(v, np.float32) for v in value] if isinstance(value, (list, tuple)) else \
        [np.asarray(value, np.float32)]


def _probe_batches(served, length):
    """Probe inputs as the model takes them: padded to `max_seq_len` and
    trimmed to the longest row (unless the artifact's length is fixed)."""
    texts = PROBES if not served.pairs else [(a, b) for a, b in zip(PROBES, reversed(PROBES))]
    firsts = [t if isinstance(t, str) else t[0] for t in texts]
    seconds = None if not served.pairs else [t[1] for t in texts]
    encoded = served.tokenizer.encode_batch(firsts, seconds, max_len=served.record.max_seq_len)
    arrays = [encoded.token_ids, encoded.segment_ids][: len(served.model.inputs)]
    batches = [arrays]
    if length is None:
        width = int(encoded.lengths[:2].max())  # the short ones, unpadded
        batches.append([a[:2, :width] for a in arrays])
    return batches


def export_run(run_dir, output, format, *, overwrite=False):
    """Export the complete run in `run_dir` to `output` in `format`.

    Returns the serving manifest (also written as OUTPUT/serving.json).

    `output` must not be, contain or lie inside `run_dir`; with `overwrite`
    it may be an earlier export (a directory holding `serving.json`), which
    is replaced only once the new artifact has passed its check.  Nothing
    else is ever removed.

    Raises:
        ConfigError: an unknown format, a backend that cannot export it, an
            `output` that overlaps the run, exists (without `overwrite`, or
            is not an earlier export) or cannot be written.
        DataError: the exporter failed, or the artifact fails in its own
            runtime or gives logits that differ from the Keras model's.
    """
    import keras

    if format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    backend = keras.backend.backend()
    if backend not in EXPORTED_BY[format]:
        raise ConfigError(
            f"{format}: Keras exports it with KERAS_BACKEND={' or '.join(EXPORTED_BY[format])}, and this "
            f"process runs {backend}; the run's model loads on any backend, so set KERAS_BACKEND and export again"
        )
    output = os.path.abspath(os.fspath(output))
    # The destination is judged before the run is read: one that is,
    # contains or lies inside the run is refused (an --overwrite of it would
    # remove the run), and only an earlier export is ever replaced.
    with atomic_directory(output, overwrite=overwrite, marker=MANIFEST, inputs=[run_dir], flag="--output",
                          error=ConfigError) as tmp:
        served = _Served(run_dir)
        model, record = served.model, served.record
        # jax2onnx names every free dimension on its own, so the two inputs'
        # lengths could not be tied together: the JAX ONNX artifact takes
        # inputs padded to max_seq_len.
        length = record.max_seq_len if (format, backend) == ("onnx", "jax") else None
        probes = _probe_batches(served, length)
        expected = [_outputs(model.predict_on_batch(batch)) for batch in probes]
        model(probes[0])  # Keras exports only a model that has been called
        other = [b for b in EXPORTED_BY[format] if b != backend]
        hint = f" (nothing was written; KERAS_BACKEND={other[0]} may export it)" if other else ""
        options = {"input_signature": _signature(model, length)}
        if (format, backend) == ("tf_saved_model", "jax"):
            options["jax2tf_kwargs"] = _jax2tf_options(model)
        _exporter_step(f"Keras' {format} exporter (backend {backend})", lambda: model.export(
            os.path.join(tmp, ARTIFACTS[format]), format=format, verbose=False, **options), hint)
        shutil.copyfile(runs.vocab_file(run_dir), os.path.join(tmp, "vocab.txt"))
        manifest = {
            "format": format,
            "artifact": ARTIFACTS[format],
            "exported_by": f"keras {keras.__version__}, backend {backend}",
            "kind": record.kind,
            "task": record.task,
            "inputs": [{"name": t.name, "dtype": "int32", "shape": [None, length]} for t in model.inputs],
            "output": served.output,
            "labels": list(served.labels),
            "regression": served.is_regression,
            "num_labels": record.num_labels,
            "max_seq_len": record.max_seq_len,
            "cased": record.cased,
            "vocab": "vocab.txt",
        }
        write_json(os.path.join(tmp, MANIFEST), manifest)
        # An artifact its own runtime cannot run (the StableHLO that JAX 0.10
        # writes for erf is newer than TensorFlow 2.21 reads) is refused like
        # one that disagrees: running it is the only proof an artifact works.
        try:
            got = [_outputs(run_artifact(tmp, batch)) for batch in probes]
        except DataError as e:
            reason = str(e).replace(tmp, output)  # the temporary directory is gone by now
            raise DataError(f"{output}: the artifact exported on {backend} does not run: {reason}{hint}") from e
        if any(len(g) != len(want) for g, want in zip(got, expected)):
            raise DataError(f"{output}: the {format} artifact gives {len(got[0])} outputs, the Keras model "
                            f"{len(expected[0])}; not written")
        difference = max(float(np.abs(g - w).max()) for gs, ws in zip(got, expected) for g, w in zip(gs, ws))
        if not difference <= TOLERANCE:
            raise DataError(f"{output}: the {format} artifact's logits differ from the Keras model's by "
                            f"{difference:.3g} (more than {TOLERANCE}); not written")
        manifest["max_abs_difference"] = difference
        write_json(os.path.join(tmp, MANIFEST), manifest)
    logger.info("exported %s to %s (logits within %.2g of Keras)", run_dir, output, difference)
    return manifest
