"""`kbert predict --model RUN_DIR [TEXT ...]`: classify raw text with a trained run.

Input: the TEXT arguments; else `--file` (a `.tsv` in the task's GLUE
layout, labeled or test; any other file one input a line, a pair as
`first<TAB>second`); else standard input, one input a line.  A file and
standard input are read by one rule: UTF-8 bytes (a leading BOM dropped),
lines ending at "\n", "\r\n" or "\r"; bytes that are not UTF-8 are an
error naming the line ("<stdin>:3: not UTF-8 text ..."), as in a `.tsv`.
Output, on stdout in input order: one JSON object a line, or with
`--format tsv` a header and one row a line.  A bad row (a blank line, an
empty sentence, a wrong number of tab-separated fields) is an error naming
its line; none is skipped.
"""

import codecs
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
        for field, text in enumerate(fields, 1):
            # As a task .tsv refuses one: an empty half of a pair is damage, not a sentence.
            if not text.strip():
                _fail(f"{where}:{number}: empty sentence in field {field}")
        texts.append(tuple(fields) if pairs else line)
    return texts


def _decoded_lines(data, where):
    """The lines of `data` (bytes) as text, by the rule of the module docstring.

    Raises:
        DataError: naming `where` and the line of the first byte that is not UTF-8.
    """
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = len(_split_lines(data[:e.start].decode("utf-8")))
        _fail(f"{where}:{line}: not UTF-8 text ({e.reason})")
    lines = _split_lines(text)
    if lines[-1] == "":  # the end of the last line, not a line
        lines.pop()
    return lines


def _split_lines(text):
    # open()'s universal newlines, which --file used to read with; not
    # str.splitlines, which would also cut at form feeds and U+2028.
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _fail(message):
    from kbert.errors import DataError

    raise DataError(message)


def _read_inputs(args, classifier):
    from kbert.errors import DataError
    from kbert.glue import get_processor

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
    where = args.file or "<stdin>"
    try:
        if args.file:
            with open(args.file, "rb") as handle:
                data = handle.read()
        else:
            # The bytes, not sys.stdin's own decoding (the locale's, strict or
            # surrogateescape): the rule is the file's.  None when closed.
            stream = getattr(sys.stdin, "buffer", None)
            if stream is None:
                _fail(f"{where}: cannot read (standard input is not a byte stream); give TEXT or --file")
            data = stream.read()
    except OSError as e:
        _fail(f"{where}: cannot read ({e})")
    return _lines(_decoded_lines(data, where), where, classifier.pairs)


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
        columns = ["score"] if classifier.is_regression else ["label", *(f"p_{label}" for label in classifier.labels)]
        print("\t".join([*heads, *columns]))
        for p in predictions:
            texts = [t.replace("\t", " ") for t in ((p.text,) if isinstance(p.text, str) else p.text)]
            values = [f"{p.score:.6g}"] if p.score is not None else [
                p.label, *(f"{p.probabilities[label]:.6g}" for label in classifier.labels)]
            print("\t".join([*texts, *values]))
    cut = sum(1 for p in predictions if p.truncated)
    print(f"kbert predict: {len(predictions)} inputs in {seconds:.2f} s "
          f"({len(predictions) / max(seconds, 1e-9):.1f} ex/s); {cut} truncated to {classifier.max_seq_len} "
          "word pieces", file=sys.stderr)
