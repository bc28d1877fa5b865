"""`kbert materials --model RUN_DIR --task SST-2 --out DIR`: run a fine-tuned
teacher over a GLUE task and store what it says (see `kbert.materials`).

RUN_DIR is a fine-tuning run (`kbert finetune`): `model.keras` (a
`BertModel` with a classifier), `vocab.txt`, and `run.json` (read: the task,
and the options' max_seq_len and cased).
With `--augment N`, up to N augmented copies of each training sentence
(`kbert.augment`) become the "augmented" split, labelled by the teacher.
"""

import json
import os

SPLITS = ("train", "dev", "test")


def add_arguments(parser):
    parser.add_argument("--model", required=True, help="fine-tuned run directory (model.keras, vocab.txt, run.json)")
    parser.add_argument("--task", help="GLUE task, e.g. SST-2 (default: the run's)")
    parser.add_argument("--out", required=True, help="materials directory (re-runs skip complete splits)")
    parser.add_argument("--data-dir", help="GLUE data directory (default: $GLUE_DIR)")
    parser.add_argument("--splits", default=",".join(SPLITS), help="comma-separated (default: %(default)s)")
    parser.add_argument("--max-seq-len", type=int, help="default: the run's")
    parser.add_argument("--augment", type=int, default=0, metavar="N",
                        help="up to N augmented copies per training sentence, each one more teacher pass")
    parser.add_argument("--seed", type=int, default=0, help="augmentation seed")
    parser.add_argument("--batch-size", type=int, default=64, help="teacher batch size")


def _load_run(run_dir):
    """(teacher, vocab tokens, run.json dict) of a fine-tuning run directory."""
    import keras

    import kbert  # noqa: F401  registers the kbert layers for load_model
    from kbert.errors import ConfigError
    from kbert.tokenization import load_vocab

    paths = {name: os.path.join(run_dir, name) for name in ("model.keras", "vocab.txt", "run.json")}
    for path in paths.values():
        if not os.path.exists(path):
            raise ConfigError(f"{path}: missing; --model must be a fine-tuning run directory")
    with open(paths["run.json"], encoding="utf-8") as f:
        run = json.load(f)
    token_dict = load_vocab(paths["vocab.txt"])
    vocab = [token for token, _ in sorted(token_dict.items(), key=lambda item: item[1])]
    teacher = keras.saving.load_model(paths["model.keras"], compile=False)
    return teacher, vocab, run, paths["vocab.txt"]


def _encode_texts(tokenizer, firsts, seconds, max_len):
    """Like `Tokenizer.encode_batch`, but with `[MASK]` kept as the mask token.

    BERT's basic tokenizer would cut a literal "[MASK]" into "[", "mask",
    "]"; augmented sentences are split around it and the pieces tokenized.
    """
    import numpy as np

    from kbert.augment import MASK
    from kbert.tokenization import truncate_seq_pair

    vocab = tokenizer.token_dict
    mask_id, cls_id, sep_id = vocab[MASK], vocab["[CLS]"], vocab["[SEP]"]

    def ids(text):
        out = []
        for i, part in enumerate(text.split(MASK)):
            if i:
                out.append(mask_id)
            out.extend(tokenizer.convert_tokens_to_ids(tokenizer.split(part)))
        return out

    rows = []
    for i, first in enumerate(firsts):
        a = ids(first)
        b = None if seconds is None else ids(seconds[i])
        if b is None:
            a = a[: max_len - 2]
            rows.append(([cls_id, *a, sep_id], [0] * (len(a) + 2)))
        else:
            truncate_seq_pair(a, b, max_len - 3)
            rows.append(([cls_id, *a, sep_id, *b, sep_id], [0] * (len(a) + 2) + [1] * (len(b) + 1)))
    token_ids = np.zeros((len(rows), max_len), np.int32)
    segment_ids = np.zeros((len(rows), max_len), np.int32)
    for i, (t, s) in enumerate(rows):
        token_ids[i, : len(t)], segment_ids[i, : len(s)] = t, s
    return token_ids, segment_ids


def _split(tokenizer, firsts, seconds, labels, max_len):
    import numpy as np

    from kbert.materials import EncodedSplit

    token_ids, segment_ids = _encode_texts(tokenizer, firsts, seconds, max_len)
    sentences = np.asarray(firsts if seconds is None else list(zip(firsts, seconds)), dtype=str)
    return EncodedSplit(token_ids, segment_ids, np.asarray(labels, np.int32), sentences)


def run(args):
    from kbert.augment import augment, expected_passes
    from kbert.errors import ConfigError
    from kbert.glue import get_processor, resolve_data_dir
    from kbert.materials import generate_materials
    from kbert.tokenization import Tokenizer

    teacher, vocab, run_info, vocab_path = _load_run(args.model)
    options = run_info.get("options", {})
    task = args.task or run_info.get("task") or options.get("task")
    if not task:
        raise ConfigError(f"{args.model}: the run names no task; pass --task")
    processor = get_processor(task)
    if run_info.get("task") and run_info["task"] != processor.name:
        raise ConfigError(f"{args.model}: the teacher was fine-tuned on {run_info['task']}, not {processor.name}")
    if processor.is_regression:
        raise ConfigError(f"{processor.name} is a regression task; the CNN student distils classifiers only")
    max_len = args.max_seq_len or int(run_info.get("max_seq_len") or options.get("max_seq_len", 128))
    cased = bool(run_info.get("cased", options.get("cased", False)))
    tokenizer = Tokenizer.from_vocab_file(vocab_path, cased=cased)
    data_dir = resolve_data_dir(args.data_dir)

    splits = {}
    train = None
    for name in [s.strip() for s in args.splits.split(",") if s.strip()]:
        examples = processor.examples(data_dir, name)
        pair = any(e.text_b is not None for e in examples)
        firsts = [e.text_a for e in examples]
        seconds = [e.text_b or "" for e in examples] if pair else None
        labels = [-1 if e.label is None else processor.label_id(e.label) for e in examples]
        splits[name] = _split(tokenizer, firsts, seconds, labels, max_len)
        if name == "train":
            train = (firsts, seconds)
    if args.augment:
        if train is None:
            raise ConfigError("--augment needs the train split among --splits")
        firsts, seconds = train
        sources = firsts if seconds is None else list(zip(firsts, seconds))
        copies = [text for _, text in augment(sources, args.augment, args.seed)]
        new_firsts = [c if seconds is None else c[0] for c in copies]
        new_seconds = None if seconds is None else [c[1] for c in copies]
        splits["augmented"] = _split(tokenizer, new_firsts, new_seconds, [-1] * len(copies), max_len)
        print(f"augmented: {len(copies)} sentences, {expected_passes(len(firsts), len(copies)):.2f} "
              f"extra teacher passes over train")

    manifest = generate_materials(
        teacher, splits, args.out, vocab=vocab, task=processor.name, max_seq_len=max_len,
        teacher_id=os.path.abspath(args.model), cased=cased, batch_size=args.batch_size,
    )
    for name, entry in manifest["splits"].items():
        print(f"{name}: {entry['count']} rows, {entry.get('seconds')} s, {entry.get('items_per_second')} it/s")
    print(f"materials: {args.out}")
