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
from kbert.errors import ConfigError

ACTIVATIONS = ("gelu", "relu", "tanh", "linear")

_REQUIRED = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
)


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
        for name in _REQUIRED + ("max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(
                    f"{source}: `{name}` must be a positive integer, got {value!r}"
                )
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"{source}: `hidden_size` {self.hidden_size} is not a multiple of "
                f"`num_attention_heads` {self.num_attention_heads}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(
                f"{source}: `hidden_act` {self.hidden_act!r} is not one of "
                f"{', '.join(ACTIVATIONS)}"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if not 0.0 <= float(value) < 1.0:
                raise ConfigError(f"{source}: `{name}` must be in [0, 1), got {value!r}")

    @property
    def activation(self):
        """The feed-forward activation as kbert's layers name it."""
        if self.hidden_act == "gelu" and not self.gelu_approximate:
            return "gelu_exact"
        return self.hidden_act

    @classmethod
    def from_dict(cls, values, source="config"):
        values = dict(values)
        missing = [k for k in _REQUIRED if k not in values]
        if missing:
            raise ConfigError(f"{source}: missing field(s) {', '.join(missing)}")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: values.pop(k) for k in list(values) if k in names}
        try:
            config = cls(**known, extra=values)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None
        return config

    @classmethod
    def from_json_file(cls, path):
        path = os.fspath(path)
        values = read_json(path, error=ConfigError, what="config", missing="config file not found")
        return cls.from_dict(values, source=path)

    @classmethod
    def from_hf_dict(cls, values, source="config.json"):
        """Read a Hugging Face `config.json` (`BertConfig` of transformers)."""
        values = dict(values)
        act = values.get("hidden_act", "gelu")
        # HF's "gelu" is the exact erf form; "gelu_new" and
        # "gelu_pytorch_tanh" are the tanh form the original calls "gelu".
        forms = {
            "gelu": ("gelu", False),
            "gelu_new": ("gelu", True),
            "gelu_pytorch_tanh": ("gelu", True),
            "relu": ("relu", True),
            "tanh": ("tanh", True),
            "linear": ("linear", True),
        }
        if act not in forms:
            raise ConfigError(f"{source}: unsupported `hidden_act` {act!r}")
        values["hidden_act"], values["gelu_approximate"] = forms[act]
        eps = values.get("layer_norm_eps", 1e-12)
        if abs(eps - 1e-12) > 1e-15:
            raise ConfigError(f"{source}: `layer_norm_eps` {eps} is not BERT's 1e-12")
        if values.get("position_embedding_type", "absolute") != "absolute":
            raise ConfigError(
                f"{source}: `position_embedding_type` "
                f"{values['position_embedding_type']!r} is not supported"
            )
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
