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


def adam_steps(optimizer, spec, variable, to_numpy, tensor=lambda array: array):
    """The kernel and bias after each of `spec`'s gradient steps under
    `optimizer` (keras-bert's AdamWarmup or kbert's), [steps, weights]:
    `variable(array, name)` makes a variable of the side's framework,
    `to_numpy` reads one back and `tensor` makes a gradient."""
    import numpy as np

    kernel = variable(np.array(spec["kernel"], "float32"), "kernel")
    bias = variable(np.array(spec["bias"], "float32"), "bias")
    steps = []
    for g_kernel, g_bias in zip(spec["kernel_grads"], spec["bias_grads"]):
        gradients = [tensor(np.array(g_kernel, "float32")), tensor(np.array(g_bias, "float32"))]
        optimizer.apply_gradients(list(zip(gradients, [kernel, bias])))
        steps.append(np.concatenate([to_numpy(kernel).ravel(), to_numpy(bias)]))
    return np.stack(steps)
