"""`kbert predict --model RUN_DIR [TEXT ...]`: classify raw text with a trained run.

Input: the TEXT arguments; else `--file` (a `.tsv` in the task's GLUE
layout, labeled or test; any other file by `kbert.corpus`'s rule: JSON
lines, Parquet, or one input a line, a pair as `first<TAB>second`); else
standard input, one input a line.  A file and standard input are read by
one rule: UTF-8 bytes (a leading BOM dropped), lines ending at "\n",
"\r\n" or "\r"; bytes that are not UTF-8 are an error naming the line
("<stdin>:3: not UTF-8 text ..."), as in a `.tsv`.
Output, on stdout in input order: one JSON object a line, or with
`--format tsv` a header and one row a line.  A bad row (a blank line, an
empty sentence, a wrong number of tab-separated fields) is an error naming
its line; none is skipped.

Inputs of any size: `--input PATH...` (files or glob patterns; text, JSON
lines or Parquet, `kbert.corpus`) with `--output DIR` writes the
predictions in shards, and a re-run skips those already written
(`kbert.predict.predict_files`).
"""

import json
import sys
import time

from kbert.commands.flags import add_flag, add_option, options_from_args
from kbert.options import ENGINES, PREDICT_FORMATS, PredictOptions


def add_arguments(parser):
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="inputs; a pair as 'first<TAB>second'")
    add_flag(parser, "--model", required=True, help="a run directory (`kbert finetune` or `kbert distill`)")
    add_flag(parser, "--file", help="inputs: a task .tsv, or one input a line (default: TEXT, else stdin)")
    add_flag(parser, "--input", nargs="+", metavar="PATH",
             help="inputs of any size: text, JSON lines (.jsonl) or Parquet files, or glob patterns; with --output")
    add_flag(parser, "--output", metavar="DIR",
             help="with --input: write the predictions there in shards; a re-run skips finished shards")
    add_option(parser, PredictOptions, "format", choices=PREDICT_FORMATS,
               help="json lines (default), tsv, or with --output parquet")
    add_option(parser, PredictOptions, "batch_size")
    add_option(parser, PredictOptions, "long_inputs", choices=("truncate", "windows"),
               help="truncate to the run's max_seq_len (default), or average overlapping windows")
    add_option(parser, PredictOptions, "stride", type=int, help="word pieces between windows (default: half)")
    add_option(parser, PredictOptions, "packing",
               help="read a BERT classifier's rows packed where that pays: the same logits (default: yes)")
    add_option(parser, PredictOptions, "shard_rows", metavar="N", help="inputs per shard with --output "
                                                                       "(default %(default)s)")
    add_option(parser, PredictOptions, "engine", choices=ENGINES,
               help="with --output: answer the shards here (local, the default) or on Ray Data actors (ray)")
    add_option(parser, PredictOptions, "ray_address", type=str, metavar="ADDRESS",
               help="with --engine ray: the Ray cluster to join (default: a Ray instance on this machine)")
    add_option(parser, PredictOptions, "workers", type=int, metavar="N",
               help="with --engine ray: Ray actors, each with its own model (default: one per CPU)")
    add_flag(parser, "--verify", action=bool, help="check the run's files against their recorded hashes first")


def _fail(message):
    from kbert.errors import DataError

    raise DataError(message)


def _read_inputs(args, pairs, task):
    from kbert.corpus import read_records, text_lines, text_records
    from kbert.errors import DataError
    from kbert.glue import get_processor

    if args.texts:
        if args.file:
            _fail("give TEXT arguments or --file, not both")
        lines = ((number, text.rstrip("\n").rstrip("\r")) for number, text in enumerate(args.texts, 1))
        return [text for _, text in text_records(lines, "argument", pairs=pairs, blank="error")]
    if args.file and args.file.endswith(".tsv") and task is not None:
        processor = get_processor(task)
        try:
            examples = processor.read_file(args.file, labeled=True)
        except DataError as labeled_error:
            try:
                examples = processor.read_file(args.file, labeled=False)
            except DataError:
                raise labeled_error from None
        return [e.text_a if e.text_b is None else (e.text_a, e.text_b) for e in examples]
    if args.file:
        return [text for _, text in read_records(args.file, pairs=pairs, blank="error")]
    # The bytes, not sys.stdin's own decoding (the locale's, strict or
    # surrogateescape): the rule is the file's.  None when closed.
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        _fail("<stdin>: cannot read (standard input is not a byte stream); give TEXT or --file")
    try:
        return [text for _, text in text_records(text_lines(stream, "<stdin>"), "<stdin>", pairs=pairs,
                                                 blank="error")]
    except OSError as e:
        _fail(f"<stdin>: cannot read ({e})")


def _run_files(args, options):
    from kbert.predict import predict_files

    if args.texts or args.file:
        _fail("give --input, or TEXT arguments or --file, not both")
    if not args.output:
        _fail("--input writes its predictions to --output DIR")
    manifest = predict_files(args.model, args.input, args.output, options, verify=args.verify)
    shards = manifest["shards"]
    rate = manifest["rows_per_second"]
    print(f"kbert predict: {manifest['rows']} inputs in {len(shards)} shard(s) in {args.output} "
          f"({manifest['resumed_rows']} already written); {manifest['seconds']:.2f} s"
          f"{f' ({rate} ex/s)' if rate else ''}; {sum(s.get('truncated', 0) for s in shards)} truncated",
          file=sys.stderr)


def _run_head_task(args, options):
    """A CoNLL run's entities, or a SQuAD run's answers, as JSON lines."""
    from tqdm.auto import tqdm

    from kbert import runs
    from kbert.headtasks import predict_texts
    defaults = PredictOptions()
    changed = [f"--{name.replace('_', '-')}" for name in ("format", "long_inputs", "stride", "packing")
               if getattr(options, name) != getattr(defaults, name)]
    if changed:
        _fail(f"{', '.join(changed)}: a conll or squad run answers in JSON lines, reading long texts as windows")
    model, record = runs.load_model(args.model, verify=args.verify)
    tokenizer = runs.load_tokenizer(args.model, record, model)
    texts = _read_inputs(args, record.task == "squad", None)
    started = time.perf_counter()
    with tqdm(desc="predict", unit="window", disable=not args.file, file=sys.stderr) as bar:
        answers = predict_texts(model, record, tokenizer, texts, batch_size=options.batch_size, progress=bar)
    seconds = time.perf_counter() - started
    for answer in answers:
        print(json.dumps(answer, ensure_ascii=False))
    print(f"kbert predict: {len(answers)} inputs in {seconds:.2f} s ({len(answers) / max(seconds, 1e-9):.1f} ex/s)",
          file=sys.stderr)


def run(args):
    from tqdm.auto import tqdm

    from kbert import runs
    from kbert.options import head_task
    from kbert.predict import load_classifier, tsv_lines

    options = options_from_args(PredictOptions, args)
    if args.input:
        return _run_files(args, options)
    if options.engine != "local":
        _fail("--engine ray answers shards: give --input PATH... --output DIR")
    if args.output:
        _fail("--output comes with --input (inputs of any size, in shards); TEXT and --file print to stdout")
    if options.format == "parquet":
        _fail("--format parquet writes shards: give --input PATH... --output DIR")
    if head_task(runs.complete_run(args.model).task):
        return _run_head_task(args, options)
    classifier = load_classifier(args.model, verify=args.verify)
    texts = _read_inputs(args, classifier.pairs, classifier.record.task)
    started = time.perf_counter()
    with tqdm(total=len(texts), desc="predict", unit="ex", disable=not args.file, file=sys.stderr) as bar:
        predictions = classifier.predict(texts, batch_size=options.batch_size, long_inputs=options.long_inputs,
                                         stride=options.stride, progress=bar, packing=options.packing)
    seconds = time.perf_counter() - started
    lines = (json.dumps(p.to_json(), ensure_ascii=False) for p in predictions) if options.format == "json" else \
        tsv_lines(classifier, predictions)
    for line in lines:
        print(line)
    cut = sum(1 for p in predictions if p.truncated)
    print(f"kbert predict: {len(predictions)} inputs in {seconds:.2f} s "
          f"({len(predictions) / max(seconds, 1e-9):.1f} ex/s); {cut} truncated to {classifier.max_seq_len} "
          "word pieces", file=sys.stderr)
