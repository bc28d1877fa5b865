"""`BertConfig`: the original `bert_config.json` vocabulary, from file to layer.

Field names are exactly those of Google's `modeling.BertConfig`; unknown keys
(`directionality`, `pooler_*`, ...) are kept and written back untouched.

One quirk needs a key of its own: the original checkpoints were trained with
the tanh approximation of gelu and call it `"gelu"`, while Hugging Face's
`"gelu"` is the exact erf form.  kbert keeps `hidden_act` in the original's
meaning and records the form in `gelu_approximate` (absent = True, the
original's).  The original code ignores unknown keys, so an exported
config stays readable by it, and a round trip through kbert never changes the
numbers.
"""

import dataclasses
import json
import os

from kbert.atomic import read_json
from kbert.checks import is_int, is_number
from kbert.errors import ConfigError

ACTIVATIONS = ("gelu", "relu", "tanh", "linear")

_REQUIRED = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
)

# Every field kbert reads, its kind and its range: the one place where a
# value from a file is judged.  JSON gives Python types, and kbert takes them
# as they are: a bool is not an int, the string "0.1" is not a float, and
# NaN and infinities are no numbers of any field.
_INTS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)
_PROBABILITIES = ("hidden_dropout_prob", "attention_probs_dropout_prob")

# Hugging Face `hidden_act` -> (kbert's hidden_act, gelu_approximate).  HF's
# "gelu" is the exact erf form; "gelu_new" and "gelu_pytorch_tanh" are the
# tanh form the original calls "gelu".
_HF_ACTIVATIONS = {
    "gelu": ("gelu", False),
    "gelu_new": ("gelu", True),
    "gelu_pytorch_tanh": ("gelu", True),
    "relu": ("relu", True),
    "tanh": ("tanh", True),
    "linear": ("linear", True),
}
LAYER_NORM_EPSILON = 1e-12  # modeling.py's layer_norm; HF's layer_norm_eps must agree


def check_fields(values, source="config"):
    """Refuse any field of `values` (bert_config.json's names) of the wrong
    type or out of range, with a `ConfigError` naming `source` and the field.

    Only the fields present are checked (defaults are valid); unknown keys
    are not kbert's to judge.
    """

    def refuse(name, what):
        raise ConfigError(f"{source}: `{name}` must be {what}, got {values[name]!r}")

    for name in _INTS:
        if name in values and not (is_int(values[name]) and values[name] >= 1):
            refuse(name, "a positive integer")
    for name in _PROBABILITIES:
        if name in values and not (is_number(values[name]) and 0 <= values[name] < 1):
            refuse(name, "a number in [0, 1)")
    if "initializer_range" in values and not (
        is_number(values["initializer_range"]) and values["initializer_range"] >= 0
    ):
        refuse("initializer_range", "a finite number >= 0 (a standard deviation)")
    if "hidden_act" in values and not (
        isinstance(values["hidden_act"], str) and values["hidden_act"] in ACTIVATIONS
    ):
        refuse("hidden_act", f"one of {', '.join(ACTIVATIONS)}")
    if "gelu_approximate" in values and not isinstance(values["gelu_approximate"], bool):
        refuse("gelu_approximate", "true or false")
    hidden, heads = values.get("hidden_size"), values.get("num_attention_heads")
    if hidden is not None and heads is not None and hidden % heads:
        raise ConfigError(
            f"{source}: `hidden_size` {hidden} is not a multiple of "
            f"`num_attention_heads` {heads}"
        )


def check_hf_fields(values, source="config.json"):
    """The Hugging Face fields kbert reads besides bert_config.json's."""

    def refuse(name, what):
        raise ConfigError(f"{source}: `{name}` must be {what}, got {values[name]!r}")

    if "model_type" in values and values["model_type"] != "bert":
        refuse("model_type", "'bert'")
    act = values.get("hidden_act", "gelu")
    if not (isinstance(act, str) and act in _HF_ACTIVATIONS):
        refuse("hidden_act", f"one of {', '.join(_HF_ACTIVATIONS)}")
    if "layer_norm_eps" in values:
        eps = values["layer_norm_eps"]
        if not is_number(eps):
            refuse("layer_norm_eps", "a number (BERT's 1e-12)")
        if abs(eps - LAYER_NORM_EPSILON) > 1e-15:
            raise ConfigError(f"{source}: `layer_norm_eps` {eps} is not BERT's 1e-12")
    if values.get("position_embedding_type", "absolute") != "absolute":
        refuse("position_embedding_type", "'absolute' (the only kind BERT has)")


@dataclasses.dataclass
class BertConfig:
    vocab_size: int
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    gelu_approximate: bool = True
    extra: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.validate()

    def validate(self, source="config"):
        check_fields(
            {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"},
            source,
        )
        if not isinstance(self.extra, dict):
            raise ConfigError(f"{source}: `extra` must be a dict, got {type(self.extra).__name__}")

    @property
    def activation(self):
        """The feed-forward activation as kbert's layers name it."""
        if self.hidden_act == "gelu" and not self.gelu_approximate:
            return "gelu_exact"
        return self.hidden_act

    @classmethod
    def from_dict(cls, values, source="config"):
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: a config is a JSON object, not {type(values).__name__}")
        values = dict(values)
        missing = [k for k in _REQUIRED if k not in values]
        if missing:
            raise ConfigError(f"{source}: missing field(s) {', '.join(missing)}")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: values.pop(k) for k in list(values) if k in names}
        # Checked here, with the defaults filled in, so that messages name
        # the file; __post_init__ checks again (for direct construction).
        defaults = {
            f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
        }
        check_fields({**defaults, **known}, source)
        return cls(**known, extra=values)

    @classmethod
    def from_json_file(cls, path):
        path = os.fspath(path)
        values = read_json(path, error=ConfigError, what="config", missing="config file not found")
        return cls.from_dict(values, source=path)

    @classmethod
    def from_hf_dict(cls, values, source="config.json"):
        """Read a Hugging Face `config.json` (`BertConfig` of transformers)."""
        values = dict(values)
        check_hf_fields(values, source)
        values["hidden_act"], values["gelu_approximate"] = _HF_ACTIVATIONS[
            values.get("hidden_act", "gelu")
        ]
        keep = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls.from_dict({k: v for k, v in values.items() if k in keep}, source)

    def to_dict(self):
        values = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("extra", "gelu_approximate")
        }
        if not self.gelu_approximate:
            values["gelu_approximate"] = False
        values.update(self.extra)
        return values

    def to_json_string(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
