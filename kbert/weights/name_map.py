"""The name maps: which checkpoint variable fills which Keras weight, and how.

Each map is a table of rows `original name -> (Keras layer, weight, transform)`,
readable against a checkpoint listing (`kbert names CHECKPOINT`).  Loading
and export read the same table; nothing else knows the names.

In row names, `{i}` is the checkpoint's 0-based encoder index and `{n}` is
keras-bert's 1-based one: checkpoint `layer_0` is `Encoder-1`.

Transforms:
    None         the tensor is stored as Keras holds it
    "transpose"  the tensor is stored [out, in] (a `tf.get_variable` weight
                 matrix used as `matmul(x, w, transpose_b=True)`, or a
                 PyTorch `nn.Linear.weight`); Keras' Dense kernel is [in, out]
"""

import dataclasses
import re

TRANSPOSE = "transpose"


@dataclasses.dataclass(frozen=True)
class Row:
    name: str  # variable name in the checkpoint
    layer: str  # Keras layer name
    weight: str  # weight path inside the layer
    transform: str = None

    @property
    def slot(self):
        """The Keras variable path, `layer/weight`."""
        return f"{self.layer}/{self.weight}"

    def expand(self, num_layers):
        if "{i}" not in self.name:
            return [self]
        return [
            Row(self.name.format(i=i), self.layer.format(n=i + 1), self.weight, self.transform)
            for i in range(num_layers)
        ]


# fmt: off
_ENC = "bert/encoder/layer_{i}"
ORIGINAL = (
    Row("bert/embeddings/word_embeddings",                 "Embedding-Token",    "embeddings"),
    Row("bert/embeddings/token_type_embeddings",           "Embedding-Segment",  "embeddings"),
    Row("bert/embeddings/position_embeddings",             "Embedding-Position", "embeddings"),
    Row("bert/embeddings/LayerNorm/gamma",                 "Embedding-Norm",     "gamma"),
    Row("bert/embeddings/LayerNorm/beta",                  "Embedding-Norm",     "beta"),
    # keras-bert's task embedding; kbert's name (Google's code has none).
    Row("bert/embeddings/task_embeddings",                 "Embedding-Task",     "embeddings"),
    Row(f"{_ENC}/attention/self/query/kernel",             "Encoder-{n}-MultiHeadSelfAttention", "query/kernel"),
    Row(f"{_ENC}/attention/self/query/bias",               "Encoder-{n}-MultiHeadSelfAttention", "query/bias"),
    Row(f"{_ENC}/attention/self/key/kernel",               "Encoder-{n}-MultiHeadSelfAttention", "key/kernel"),
    Row(f"{_ENC}/attention/self/key/bias",                 "Encoder-{n}-MultiHeadSelfAttention", "key/bias"),
    Row(f"{_ENC}/attention/self/value/kernel",             "Encoder-{n}-MultiHeadSelfAttention", "value/kernel"),
    Row(f"{_ENC}/attention/self/value/bias",               "Encoder-{n}-MultiHeadSelfAttention", "value/bias"),
    Row(f"{_ENC}/attention/output/dense/kernel",           "Encoder-{n}-MultiHeadSelfAttention", "output/kernel"),
    Row(f"{_ENC}/attention/output/dense/bias",             "Encoder-{n}-MultiHeadSelfAttention", "output/bias"),
    Row(f"{_ENC}/attention/output/LayerNorm/gamma",        "Encoder-{n}-MultiHeadSelfAttention-Norm", "gamma"),
    Row(f"{_ENC}/attention/output/LayerNorm/beta",         "Encoder-{n}-MultiHeadSelfAttention-Norm", "beta"),
    Row(f"{_ENC}/intermediate/dense/kernel",               "Encoder-{n}-FeedForward", "intermediate/kernel"),
    Row(f"{_ENC}/intermediate/dense/bias",                 "Encoder-{n}-FeedForward", "intermediate/bias"),
    Row(f"{_ENC}/output/dense/kernel",                     "Encoder-{n}-FeedForward", "output/kernel"),
    Row(f"{_ENC}/output/dense/bias",                       "Encoder-{n}-FeedForward", "output/bias"),
    Row(f"{_ENC}/output/LayerNorm/gamma",                  "Encoder-{n}-FeedForward-Norm", "gamma"),
    Row(f"{_ENC}/output/LayerNorm/beta",                   "Encoder-{n}-FeedForward-Norm", "beta"),
    Row("bert/pooler/dense/kernel",                        "NSP-Dense",          "kernel"),
    Row("bert/pooler/dense/bias",                          "NSP-Dense",          "bias"),
    Row("cls/predictions/transform/dense/kernel",          "MLM-Dense",          "kernel"),
    Row("cls/predictions/transform/dense/bias",            "MLM-Dense",          "bias"),
    Row("cls/predictions/transform/LayerNorm/gamma",       "MLM-Norm",           "gamma"),
    Row("cls/predictions/transform/LayerNorm/beta",        "MLM-Norm",           "beta"),
    Row("cls/predictions/output_bias",                     "MLM-Sim",            "bias"),
    Row("cls/seq_relationship/output_weights",             "NSP",                "kernel", TRANSPOSE),
    Row("cls/seq_relationship/output_bias",                "NSP",                "bias"),
    # run_classifier.py's head; see CLASSIFIER_SCOPES.
    Row("output_weights",                                  "Classifier-Dense",   "kernel", TRANSPOSE),
    Row("output_bias",                                     "Classifier-Dense",   "bias"),
    # A token classifier: the same names on the sequence output (as the
    # run_classifier.py-derived NER scripts write them); the caller says which.
    Row("output_weights",                                  "Token-Classifier-Dense", "kernel", TRANSPOSE),
    Row("output_bias",                                     "Token-Classifier-Dense", "bias"),
    # run_squad.py's head.
    Row("cls/squad/output_weights",                        "Span-Dense",         "kernel", TRANSPOSE),
    Row("cls/squad/output_bias",                           "Span-Dense",         "bias"),
)

_HF = "encoder.layer.{i}"
HUGGING_FACE = (
    Row("embeddings.word_embeddings.weight",               "Embedding-Token",    "embeddings"),
    Row("embeddings.token_type_embeddings.weight",         "Embedding-Segment",  "embeddings"),
    Row("embeddings.position_embeddings.weight",           "Embedding-Position", "embeddings"),
    Row("embeddings.LayerNorm.weight",                     "Embedding-Norm",     "gamma"),
    Row("embeddings.LayerNorm.bias",                       "Embedding-Norm",     "beta"),
    Row("embeddings.task_embeddings.weight",               "Embedding-Task",     "embeddings"),
    Row(f"{_HF}.attention.self.query.weight",              "Encoder-{n}-MultiHeadSelfAttention", "query/kernel", TRANSPOSE),
    Row(f"{_HF}.attention.self.query.bias",                "Encoder-{n}-MultiHeadSelfAttention", "query/bias"),
    Row(f"{_HF}.attention.self.key.weight",                "Encoder-{n}-MultiHeadSelfAttention", "key/kernel", TRANSPOSE),
    Row(f"{_HF}.attention.self.key.bias",                  "Encoder-{n}-MultiHeadSelfAttention", "key/bias"),
    Row(f"{_HF}.attention.self.value.weight",              "Encoder-{n}-MultiHeadSelfAttention", "value/kernel", TRANSPOSE),
    Row(f"{_HF}.attention.self.value.bias",                "Encoder-{n}-MultiHeadSelfAttention", "value/bias"),
    Row(f"{_HF}.attention.output.dense.weight",            "Encoder-{n}-MultiHeadSelfAttention", "output/kernel", TRANSPOSE),
    Row(f"{_HF}.attention.output.dense.bias",              "Encoder-{n}-MultiHeadSelfAttention", "output/bias"),
    Row(f"{_HF}.attention.output.LayerNorm.weight",        "Encoder-{n}-MultiHeadSelfAttention-Norm", "gamma"),
    Row(f"{_HF}.attention.output.LayerNorm.bias",          "Encoder-{n}-MultiHeadSelfAttention-Norm", "beta"),
    Row(f"{_HF}.intermediate.dense.weight",                "Encoder-{n}-FeedForward", "intermediate/kernel", TRANSPOSE),
    Row(f"{_HF}.intermediate.dense.bias",                  "Encoder-{n}-FeedForward", "intermediate/bias"),
    Row(f"{_HF}.output.dense.weight",                      "Encoder-{n}-FeedForward", "output/kernel", TRANSPOSE),
    Row(f"{_HF}.output.dense.bias",                        "Encoder-{n}-FeedForward", "output/bias"),
    Row(f"{_HF}.output.LayerNorm.weight",                  "Encoder-{n}-FeedForward-Norm", "gamma"),
    Row(f"{_HF}.output.LayerNorm.bias",                    "Encoder-{n}-FeedForward-Norm", "beta"),
    Row("pooler.dense.weight",                             "NSP-Dense",          "kernel", TRANSPOSE),
    Row("pooler.dense.bias",                               "NSP-Dense",          "bias"),
    Row("cls.predictions.transform.dense.weight",          "MLM-Dense",          "kernel", TRANSPOSE),
    Row("cls.predictions.transform.dense.bias",            "MLM-Dense",          "bias"),
    Row("cls.predictions.transform.LayerNorm.weight",      "MLM-Norm",           "gamma"),
    Row("cls.predictions.transform.LayerNorm.bias",        "MLM-Norm",           "beta"),
    Row("cls.predictions.bias",                            "MLM-Sim",            "bias"),
    Row("cls.seq_relationship.weight",                     "NSP",                "kernel", TRANSPOSE),
    Row("cls.seq_relationship.bias",                       "NSP",                "bias"),
    Row("classifier.weight",                               "Classifier-Dense",   "kernel", TRANSPOSE),
    Row("classifier.bias",                                 "Classifier-Dense",   "bias"),
    # BertForTokenClassification: the same names; config.json's `architectures` says which.
    Row("classifier.weight",                               "Token-Classifier-Dense", "kernel", TRANSPOSE),
    Row("classifier.bias",                                 "Token-Classifier-Dense", "bias"),
    # BertForQuestionAnswering.
    Row("qa_outputs.weight",                               "Span-Dense",         "kernel", TRANSPOSE),
    Row("qa_outputs.bias",                                 "Span-Dense",         "bias"),
)

# keras-hub's BertBackbone / BertTextClassifier variable paths (`kbert.to_keras_hub`).
# Its attention keeps heads apart: SPLIT_HEADS reshapes a [D, D] kernel to
# [D, heads, D/heads] (a [D] bias to [heads, D/heads]), MERGED_HEADS the
# output kernel to [heads, D/heads, D]; kbert's heads are the same column
# blocks, so nothing is permuted.
SPLIT_HEADS = "split_heads"
MERGED_HEADS = "merged_heads"
_KH = "transformer_layer_{i}"
KERAS_HUB = (
    Row("token_embedding/embeddings",                      "Embedding-Token",    "embeddings"),
    Row("position_embedding/embeddings",                   "Embedding-Position", "embeddings"),
    Row("segment_embedding/embeddings",                    "Embedding-Segment",  "embeddings"),
    Row("embeddings_layer_norm/gamma",                     "Embedding-Norm",     "gamma"),
    Row("embeddings_layer_norm/beta",                      "Embedding-Norm",     "beta"),
    Row(f"{_KH}/self_attention_layer/query/kernel",        "Encoder-{n}-MultiHeadSelfAttention", "query/kernel", SPLIT_HEADS),
    Row(f"{_KH}/self_attention_layer/query/bias",          "Encoder-{n}-MultiHeadSelfAttention", "query/bias", SPLIT_HEADS),
    Row(f"{_KH}/self_attention_layer/key/kernel",          "Encoder-{n}-MultiHeadSelfAttention", "key/kernel", SPLIT_HEADS),
    Row(f"{_KH}/self_attention_layer/key/bias",            "Encoder-{n}-MultiHeadSelfAttention", "key/bias", SPLIT_HEADS),
    Row(f"{_KH}/self_attention_layer/value/kernel",        "Encoder-{n}-MultiHeadSelfAttention", "value/kernel", SPLIT_HEADS),
    Row(f"{_KH}/self_attention_layer/value/bias",          "Encoder-{n}-MultiHeadSelfAttention", "value/bias", SPLIT_HEADS),
    Row(f"{_KH}/self_attention_layer/attention_output/kernel", "Encoder-{n}-MultiHeadSelfAttention", "output/kernel", MERGED_HEADS),
    Row(f"{_KH}/self_attention_layer/attention_output/bias", "Encoder-{n}-MultiHeadSelfAttention", "output/bias"),
    Row(f"{_KH}/self_attention_layer_norm/gamma",          "Encoder-{n}-MultiHeadSelfAttention-Norm", "gamma"),
    Row(f"{_KH}/self_attention_layer_norm/beta",           "Encoder-{n}-MultiHeadSelfAttention-Norm", "beta"),
    Row(f"{_KH}/feedforward_intermediate_dense/kernel",    "Encoder-{n}-FeedForward", "intermediate/kernel"),
    Row(f"{_KH}/feedforward_intermediate_dense/bias",      "Encoder-{n}-FeedForward", "intermediate/bias"),
    Row(f"{_KH}/feedforward_output_dense/kernel",          "Encoder-{n}-FeedForward", "output/kernel"),
    Row(f"{_KH}/feedforward_output_dense/bias",            "Encoder-{n}-FeedForward", "output/bias"),
    Row(f"{_KH}/feedforward_layer_norm/gamma",             "Encoder-{n}-FeedForward-Norm", "gamma"),
    Row(f"{_KH}/feedforward_layer_norm/beta",              "Encoder-{n}-FeedForward-Norm", "beta"),
    Row("pooled_dense/kernel",                             "NSP-Dense",          "kernel"),
    Row("pooled_dense/bias",                               "NSP-Dense",          "bias"),
    Row("logits/kernel",                                   "Classifier-Dense",   "kernel"),
    Row("logits/bias",                                     "Classifier-Dense",   "bias"),
)
# fmt: on

# run_classifier.py creates `output_weights`/`output_bias` at the top level;
# variants of it (and of its TF-Hub twin) put them under `loss/` or
# `bert/loss/`.  The first scope is the one export writes.
CLASSIFIER_SCOPES = ("", "loss/", "bert/loss/")
CLASSIFIER_LAYER = "Classifier-Dense"
TOKEN_CLASSIFIER_LAYER = "Token-Classifier-Dense"
SPAN_LAYER = "Span-Dense"
# The heads' layers, by `BertModel(head=...)`; each is all there or absent.
HEAD_LAYERS = {"sequence": CLASSIFIER_LAYER, "token": TOKEN_CLASSIFIER_LAYER, "span": SPAN_LAYER}
# Hugging Face's model classes (config.json `architectures`) and the head each has.
HF_ARCHITECTURES = {"BertForSequenceClassification": "sequence", "BertForTokenClassification": "token",
                    "BertForQuestionAnswering": "span"}

# Layers a checkpoint may lack, which then keep their initial values (listed
# in `LoadReport.initialized`): the heads (run_classifier.py and
# run_squad.py create them fresh) and the task table (keras-bert's `use_task_embed` on a Google
# checkpoint, which never has one).
FRESH_LAYERS = (CLASSIFIER_LAYER, TOKEN_CLASSIFIER_LAYER, SPAN_LAYER, "Embedding-Task")
# The pre-training heads, fresh only when the caller asks (continuing
# pre-training from a checkpoint saved without them, such as a sentence
# encoder's), each group all there or all missing.
PRETRAINING_HEADS = (("MLM-Dense", "MLM-Norm", "MLM-Sim"), ("NSP",), ("NSP-Dense",))

# Checkpoint variables that are not model weights and are expected to be left
# over: Adam/AdamWeightDecay slots, step counters, Adam's beta powers.
EXPECTED_UNUSED = {
    "original": re.compile(
        r"(^|/)(adam_m|adam_v|Adam(_\d+)?|Momentum|global_step|beta[12]_power"
        r"|good_steps|loss_scale|current_loss_scale)$"
    ),
    # HF keeps position ids as a buffer, and repeats the tied MLM decoder.
    "huggingface": re.compile(
        r"^(embeddings\.position_ids|cls\.predictions\.decoder\.(weight|bias))$"
    ),
}


def normalize_hf_name(name):
    """Map the spellings HF checkpoints use onto the table's.

    Model classes with heads prefix the backbone with `bert.`, and older
    conversions kept TensorFlow's LayerNorm `gamma`/`beta`.
    """
    if name.startswith("bert."):
        name = name[len("bert.") :]
    if ".LayerNorm." in name:
        name = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", name))
    return name


def expand(table, num_layers):
    """The table with `{i}`/`{n}` rows spelled out for `num_layers` encoders,
    encoder by encoder (all of layer_0's rows, then layer_1's, ...)."""
    rows, block = [], []
    for template in table + (None,):
        if template is not None and "{i}" in template.name:
            block.append(template)
            continue
        for i in range(num_layers):
            rows.extend(t.expand(num_layers)[i] for t in block)
        block = []
        if template is not None:
            rows.append(template)
    return rows


def apply_transform(value, transform):
    if transform is None:
        return value
    if transform == TRANSPOSE:
        return value.T
    raise ValueError(f"unknown transform {transform!r}")


# Both transforms are their own inverse; export applies the same function.
invert_transform = apply_transform
