"""Code run on both sides of the keras-bert comparison: by the reference
(on keras-bert's Tokenizer, in a subprocess) and by the compatibility tests
(on kbert.keras_bert's), so both sides do exactly the same thing.  It
imports neither library."""

import json


def character_tokenizer(base):
    """keras-bert's documented subclass for character-level Chinese: every
    known character a token, a space `[unused1]`, the rest `[UNK]`."""

    class CharacterTokenizer(base):
        def _tokenize(self, text):
            out = []
            for char in text:
                if char in self._token_dict:
                    out.append(char)
                elif self._is_space(char):
                    out.append("[unused1]")
                else:
                    out.append("[UNK]")
            return out

    return CharacterTokenizer


def tokenizer_outputs(tokenizer, texts, pairs, max_len):
    """What a keras-bert-style Tokenizer makes of `texts` and `pairs`, as JSON values."""
    out = {"tokenize": [], "encode": [], "decode": []}
    for first, second in [(t, None) for t in texts] + [tuple(p) for p in pairs]:
        out["tokenize"].append(tokenizer.tokenize(first, second))
        for length in (None, max_len):
            ids, segments = tokenizer.encode(first, second, max_len=length)
            out["encode"].append([ids, segments])
            out["decode"].append(tokenizer.decode(ids))
    return json.loads(json.dumps(out))  # tuples as lists on both sides
