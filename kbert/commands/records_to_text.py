"""`kbert records-to-text FILE`: print a TFRecord of examples as text.

One block per example: its guid and label, the tokens (from the `.jsonl`
beside a kbert feature cache, or by decoding ids with --vocab), then every
feature with trailing padding left out.
"""

import itertools
import os

from kbert.glue.features import (
    CachePaths,
    iter_records,
    load_vocab_tokens,
    read_jsonl_file,
)


def add_arguments(parser):
    parser.add_argument("file", help="a .tf_record file")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="print the first N examples only")
    parser.add_argument("--vocab", help="vocab.txt to decode input_ids when no .jsonl is beside FILE")


def _strip_padding(values):
    end = len(values)
    while end and values[end - 1] == 0:
        end -= 1
    return values[:end]


def _format_values(values):
    return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def describe(index, features, entry, vocab):
    """The text block of one example."""
    head = f"#{index}"
    if entry is not None:
        head += f" guid={entry.get('guid')} label={entry.get('label')!r}"
        if entry.get("truncated"):
            head += " truncated"
    lines = [head]
    if entry is not None and "tokens" in entry:
        lines.append("  tokens: " + " ".join(entry["tokens"]))
    elif vocab is not None and "input_ids" in features:
        ids = _strip_padding(features["input_ids"])
        lines.append("  tokens: " + " ".join(vocab[i] if 0 <= i < len(vocab) else f"[id {i}?]" for i in ids))
    for name in sorted(features):
        values = features[name]
        shown = _strip_padding(values) if len(values) > 1 else values
        suffix = f"  (+{len(values) - len(shown)} zeros)" if len(shown) < len(values) else ""
        lines.append(f"  {name}: {_format_values(shown)}{suffix}")
    return "\n".join(lines)


def run(args):
    jsonl = CachePaths.from_record(args.file).jsonl
    entries = read_jsonl_file(jsonl) if os.path.isfile(jsonl) else None
    vocab = load_vocab_tokens(args.vocab) if args.vocab else None
    records = iter_records(args.file)
    if args.limit is not None:
        records = itertools.islice(records, max(args.limit, 0))
    for index, features in enumerate(records):
        entry = entries[index] if entries is not None and index < len(entries) else None
        print(describe(index, features, entry, vocab))
