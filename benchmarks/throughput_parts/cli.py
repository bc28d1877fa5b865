"""The command line of `benchmarks/throughput.py`: options, inputs, the run.

The parent reads and tokenizes the SST-2 dev sentences once, measures the
matmul peak, hands the rows to the workers and prints and writes the
report; `--worker SPEC` (internal) is what each subprocess runs.
"""

import argparse
import importlib.util
import logging
import os
import pathlib
import shlex
import sys
import tempfile

import numpy as np

from benchmarks.throughput_parts.flops import DEFAULT_MODELS, MINILM, MODELS
from benchmarks.throughput_parts.report import add_peak, format_report, write_markdown
from benchmarks.throughput_parts.timing import measure_peak
from benchmarks.throughput_parts.workers import plan_rows, run_benchmark, worker_main, write_records
from kbert.commands.flags import add_flag
from kbert.errors import CheckpointError
from kbert.glue import get_processor
from kbert.presets import preset_path
from kbert.tokenization import Tokenizer
from kbert.variants import VARIANTS

logger = logging.getLogger(__name__)

DEFAULT_GLUE_DIR = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "glue_data"

# What the options choose from.
BACKENDS = ("tensorflow", "jax", "torch")
IMPLS = ("kbert", "transformers", "keras-hub", "kbert-student")
MODES = ("padded", "bucketed")

QUICK = dict(
    impls=("kbert", "transformers", "kbert-student"),
    models=("bert-base", MINILM, "minilm-l3-student", "cnn-student"),
    backends=("jax",),
    batch_sizes=(32,),
    modes=MODES,
    max_sentences=64,
    min_seconds=0.5,
)


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
            "(or point --data-dir / GLUE_DIR at a directory holding SST-2/dev.tsv)"
        )
    return [example.text_a for example in get_processor("SST-2").dev_examples(str(data_dir))]


def tokenize(sentences, max_len):
    """token_ids, segment_ids [N, max_len] and lengths [N] with MiniLM's vocabulary."""
    try:
        vocab = os.path.join(preset_path(MINILM), "vocab.txt")
    except CheckpointError as error:
        raise UsageError(f"the MiniLM vocabulary tokenizes the sentences: {error}") from None
    encoded = Tokenizer.from_vocab_file(vocab, cased=False).encode_batch(sentences, None, max_len=max_len)
    return {"token_ids": encoded.token_ids, "segment_ids": encoded.segment_ids, "lengths": encoded.lengths}


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
        description="Inference throughput (sentences/s) of kbert's teachers and students against "
        "transformers and keras-hub, on SST-2 dev sentences.",
        epilog="Quick mode: jax only, batch 32, 64 sentences, bert-base / minilm-l6 / minilm-l3-student / "
        "cnn-student; "
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
    add_flag(parser, "--max-seq-len", type=int, default=128, help="padded width and truncation (default: 128)")
    parser.add_argument("--min-seconds", type=float,
                        help="repeat whole passes until this long (default: 1.0; quick: 0.5)")
    add_flag(parser, "--data-dir", help="GLUE data directory (default: $GLUE_DIR or ../shared/glue_data)")
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
    # The benchmark's own progress shows at INFO; the library's only when verbose.
    logging.getLogger(__package__).setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if args.worker:
        return worker_main(args.worker)
    chosen = settings(args)
    try:
        sentences = load_sentences(glue_dir(args.data_dir))
        arrays = tokenize(sentences[: chosen["max_sentences"]], args.max_seq_len)
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
        records = run_benchmark(rows, inputs_path, max_len=args.max_seq_len, min_seconds=chosen["min_seconds"],
                                progress=not args.no_progress)
    add_peak(records, peak)
    report = format_report(records)
    print(f"\nfloat32 matmul peak: {peak:.1f} GFLOP/s ({', '.join(f'{k} {v:.1f}' for k, v in peaks.items())})")
    print(report)
    command = shlex.join(["python", "benchmarks/throughput.py"] + list(sys.argv[1:] if argv is None else argv))
    if args.json:
        write_records(args.json, records)
    if args.markdown:
        write_markdown(args.markdown, report, command=command, peaks=peaks, note=args.note)
    return 0
