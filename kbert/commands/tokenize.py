"""`kbert tokenize --vocab VOCAB TEXT [TEXT_B]`: show BERT's tokens and ids.

Casing: `--cased` or `--no-cased`; without either, it is read from a known
Google release name in the `--checkpoint` or vocabulary path
(`.../cased_L-12_H-768_A-12/vocab.txt` is cased), and is uncased otherwise,
as the original's `do_lower_case=True` default.  An explicit flag that
contradicts a known release name is refused.
"""

from kbert.commands.flags import add_flag
from kbert.tokenization import Tokenizer, checkpoint_casing, validate_case_matches_checkpoint


def add_arguments(parser):
    parser.add_argument("text", help="the text (or the first text of a pair)")
    parser.add_argument("text_b", nargs="?", help="the second text of a pair")
    add_flag(parser, "--vocab", required=True, help="the checkpoint's vocab.txt")
    add_flag(parser, "--cased", action=bool, default=None,
             help="keep case and accents, or lower-case and strip them (default: from the checkpoint's name)")
    add_flag(parser, "--checkpoint", help="checkpoint path, to check (or infer) the casing from its release name")
    add_flag(parser, "--max-seq-len", type=int, help="truncate and pad to this many tokens")


def run(args):
    cased = args.cased
    known = checkpoint_casing(args.checkpoint)
    if known is None:
        known = checkpoint_casing(args.vocab)
    if cased is None:
        cased = bool(known)
    for path in (args.checkpoint, args.vocab):
        validate_case_matches_checkpoint(cased=cased, checkpoint=path)

    tokenizer = Tokenizer.from_vocab_file(args.vocab, cased=cased)
    token_ids, segment_ids, removed = tokenizer.encode(
        args.text, args.text_b, max_len=args.max_seq_len, return_truncated=True
    )
    tokens = tokenizer.convert_ids_to_tokens(token_ids)
    print("tokens:  ", " ".join(tokens))
    print("ids:     ", " ".join(map(str, token_ids)))
    print("segments:", " ".join(map(str, segment_ids)))
    if removed:
        print(f"truncated: {removed} word piece(s) removed to fit --max-seq-len {args.max_seq_len}")
