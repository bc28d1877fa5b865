"""`kbert predict --model RUN_DIR [TEXT ...]`: classify raw text with a trained run.

Input: the TEXT arguments; else `--file` (a `.tsv` in the task's GLUE
layout, labeled or test; any other file one input a line, a pair as
`first<TAB>second`); else standard input, one input a line.  Output, on
stdout in input order: one JSON object a line, or with `--format tsv` a
header and one row a line.  A bad row is an error naming its line; none is
skipped.
"""

import json
import sys
import time

from kbert.commands.flags import add_flag


def add_arguments(parser):
    from kbert.predict import LONG_INPUTS, PREDICT_BATCH_SIZE

    parser.add_argument("texts", nargs="*", metavar="TEXT", help="inputs; a pair as 'first<TAB>second'")
    add_flag(parser, "--model", required=True, help="a run directory (`kbert finetune` or `kbert distill`)")
    add_flag(parser, "--file", help="inputs: a task .tsv, or one input a line (default: TEXT, else stdin)")
    add_flag(parser, "--format", choices=("json", "tsv"), default="json", help="output format (default: json)")
    add_flag(parser, "--batch-size", type=int, default=PREDICT_BATCH_SIZE)
    add_flag(parser, "--long-inputs", choices=LONG_INPUTS, default=LONG_INPUTS[0],
             help="truncate to the run's max_seq_len (default), or average overlapping windows")
    add_flag(parser, "--packing", action=bool, default=True,
             help="read a BERT classifier's rows packed where that pays: the same logits (default: yes)")
    add_flag(parser, "--verify", action=bool, help="check the run's files against their recorded hashes first")


def _lines(lines, where, pairs):
    texts = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\n").rstrip("\r")
        fields = line.split("\t")
        if pairs and len(fields) != 2:
            _fail(f"{where}:{number}: expected 'first<TAB>second', found {len(fields)} field(s)")
        if not pairs and len(fields) != 1:
            _fail(f"{where}:{number}: a tab in a single-sentence input (this task takes no pairs)")
        if not line.strip():
            _fail(f"{where}:{number}: blank line")
        texts.append(tuple(fields) if pairs else line)
    return texts


def _fail(message):
    from kbert.errors import DataError

    raise DataError(message)


def _read_inputs(args, classifier):
    from kbert.glue import get_processor
    from kbert.errors import DataError

    if args.texts:
        if args.file:
            _fail("give TEXT arguments or --file, not both")
        return _lines(args.texts, "argument", classifier.pairs)
    if args.file and args.file.endswith(".tsv"):
        processor = get_processor(classifier.record.task)
        try:
            examples = processor.read_file(args.file, labeled=True)
        except DataError as labeled_error:
            try:
                examples = processor.read_file(args.file, labeled=False)
            except DataError:
                raise labeled_error from None
        return [e.text_a if e.text_b is None else (e.text_a, e.text_b) for e in examples]
    if args.file:
        try:
            with open(args.file, encoding="utf-8") as handle:
                return _lines(handle.readlines(), args.file, classifier.pairs)
        except (OSError, UnicodeDecodeError) as e:
            _fail(f"{args.file}: cannot read ({e})")
    return _lines(sys.stdin.readlines(), "stdin", classifier.pairs)


def run(args):
    from tqdm.auto import tqdm

    from kbert.predict import load_classifier

    classifier = load_classifier(args.model, verify=args.verify)
    texts = _read_inputs(args, classifier)
    started = time.perf_counter()
    with tqdm(total=len(texts), desc="predict", unit="ex", disable=not args.file, file=sys.stderr) as bar:
        predictions = classifier.predict(texts, batch_size=args.batch_size, long_inputs=args.long_inputs,
                                         progress=bar, packing=args.packing)
    seconds = time.perf_counter() - started
    if args.format == "json":
        for p in predictions:
            print(json.dumps(p.to_json(), ensure_ascii=False))
    else:
        heads = ["text_a", "text_b"] if classifier.pairs else ["text"]
        columns = ["score"] if classifier.is_regression else ["label", *(f"p_{l}" for l in classifier.labels)]
        print("\t".join([*heads, *columns]))
        for p in predictions:
            texts = [t.replace("\t", " ") for t in ((p.text,) if isinstance(p.text, str) else p.text)]
            values = [f"{p.score:.6g}"] if p.score is not None else [
                p.label, *(f"{p.probabilities[l]:.6g}" for l in classifier.labels)]
            print("\t".join([*texts, *values]))
    cut = sum(1 for p in predictions if p.truncated)
    print(f"kbert predict: {len(predictions)} inputs in {seconds:.2f} s "
          f"({len(predictions) / max(seconds, 1e-9):.1f} ex/s); {cut} truncated to {classifier.max_seq_len} "
          "word pieces", file=sys.stderr)
