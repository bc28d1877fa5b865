"""`kbert records-to-text FILE`: print a TFRecord of examples as text.

One block per example: its guid and label, the tokens (from the `.jsonl`
beside a kbert feature cache, or by decoding ids with --vocab), then every
feature, sequence features cut at the example's length with the padding
counted.
"""

import itertools
import os

from kbert.commands.flags import add_flag
from kbert.glue.features import CachePaths, iter_records, read_jsonl_file
from kbert.tokenization import load_vocab_tokens


def add_arguments(parser):
    parser.add_argument("file", help="a .tf_record file")
    add_flag(parser, "--limit", type=int, default=None, metavar="N", help="print the first N examples only")
    add_flag(parser, "--vocab", help="vocab.txt to decode input_ids when no .jsonl is beside FILE")


def _real_length(features):
    """Tokens before padding: from input_mask, else up to the last non-zero id."""
    if "input_mask" in features:
        return int(sum(features["input_mask"]))
    ids = features.get("input_ids", [])
    end = len(ids)
    while end and ids[end - 1] == 0:
        end -= 1
    return end


def _format_values(values):
    return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def describe(index, features, entry, vocab):
    """The text block of one example: header, tokens, then each feature."""
    head = f"#{index}"
    if entry is not None:
        head += f" guid={entry.get('guid')} label={entry.get('label')!r}"
        if entry.get("truncated"):
            head += " truncated"
    lines = [head]
    length = _real_length(features)
    width = len(features.get("input_ids", []))
    if entry is not None and "tokens" in entry:
        lines.append("  tokens: " + " ".join(entry["tokens"]))
    elif vocab is not None and "input_ids" in features:
        ids = features["input_ids"][:length]
        lines.append("  tokens: " + " ".join(vocab[i] if 0 <= i < len(vocab) else f"[id {i}?]" for i in ids))
    for name in sorted(features):
        values = features[name]
        if width > 1 and len(values) == width and length < width:
            # Sequence features: show the real positions, count the padding.
            lines.append(f"  {name}: {_format_values(values[:length])}  (+{width - length} padding)")
        else:
            lines.append(f"  {name}: {_format_values(values)}")
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
