"""Graphs derived from a built model, on its own layers (the same
variables): the packed classifier, attention probabilities, a span
head's stacked start and end logits, the
pre-training graph and the distillation trainer.  Nothing here is saved:
save the model they were made from.
"""

import keras

from kbert.boundary import InputBoundary
from kbert.errors import ConfigError, DataError
from kbert.layers import LayerwiseDistillation, PackingGather, PackingMask
from kbert.model import BertModel, encoder_block
from kbert.packing import PACKED_INPUTS


def attention_probabilities(model, layer):
    """A Keras model from `model`'s inputs to encoder `layer`'s attention
    probabilities [B, heads, queries, keys] (1-based `layer`, as the layer
    names): keras-bert's attention-map reading, built from the same weights.

    Raises:
        ConfigError: `model` has no such encoder.
    """
    names = {layer.name for layer in model.layers}
    name = f"Encoder-{layer}-MultiHeadSelfAttention"
    if name not in names:
        raise ConfigError(f"the model has no layer {name!r}")
    return keras.Model(model.inputs, _probabilities(model, layer), name=f"attention_{layer}")


def _probabilities(model, layer):
    """Encoder `layer`'s attention probabilities [B, heads, T, T], a second
    call of its attention layer on the same input and mask."""
    source = "Embedding-Norm" if layer == 1 else f"Encoder-{layer - 1}-FeedForward-Norm"
    return model.get_layer(f"Encoder-{layer}-MultiHeadSelfAttention")(
        model.get_layer(source).output, attention_mask=model.get_layer("Padding-Mask").output,
        return_probabilities=True)


def layer_output_name(layer):
    """The name of the layer whose output is encoder `layer`'s hidden states
    (1-based, as the layer names), or the embeddings' for 0: what the
    hidden-state loss matches."""
    return "Embedding-Norm" if layer == 0 else f"Encoder-{layer}-FeedForward-Norm"


def _hidden(model, layer):
    """The output [B, T, H] of encoder `layer`, or of the embeddings for 0."""
    return model.get_layer(layer_output_name(layer)).output


def layerwise_trainer(student, teacher, pairs, *, hidden_weight=0.0, attention_weight=0.0):
    """The student's logits [B, C] from its token and segment ids, with the
    layer-wise losses (`LayerwiseDistillation`) between its layers and the
    teacher's, which runs frozen (and without dropout) in the same step.

    `pairs`: (student layer, teacher layer) to match, 0 for the embeddings'
    output (matched by hidden states only).  What trains; the student alone
    is saved (its layers keep their names here, the teacher's sit inside
    `Teacher-Probe`).
    """
    for model in (student, teacher):
        if not isinstance(model, BertModel) or model.num_labels is None or model.head != "sequence":
            raise ConfigError("layer-wise distillation matches two BertModel sequence classifiers")
    attended = [(s, t) for s, t in pairs if s and t]
    hidden = [_hidden(teacher, t) for _, t in pairs] if hidden_weight else []
    attention = [_probabilities(teacher, t) for _, t in attended] if attention_weight else []
    probe = keras.Model(teacher.inputs[:2], hidden + attention, name="Teacher-Probe")
    # Each teacher layer frozen in its own config, so that a trainer reloaded
    # from .keras (a resumed run) builds its optimizer for the student alone.
    for layer in probe.layers:
        layer.trainable = False
    probe.trainable = False
    inputs = student.inputs[:2]
    taught = probe(inputs, training=False)
    taught = taught if isinstance(taught, (list, tuple)) else [taught]
    layer = LayerwiseDistillation(hidden_weight, attention_weight, hidden_layers=len(hidden),
                                  attention_layers=len(attention), name="Layerwise-Distillation")
    logits = layer([student.output, student.get_layer("Padding-Mask").output,
                    *([_hidden(student, s) for s, _ in pairs] if hidden_weight else []), *taught[: len(hidden)],
                    *([_probabilities(student, s) for s, _ in attended] if attention_weight else []),
                    *taught[len(hidden):]])
    return keras.Model(inputs, logits, name="layerwise_trainer")


class PackedClassifier(InputBoundary, keras.Model):
    """A `BertModel` classifier's layers (the same objects, so the same
    variables) over packed rows (`kbert.packing`): inputs each example's
    `[CLS]` index [N] and token, segment, position and example ids [R, L]
    (`PACKED_INPUTS`); output the logits [N, labels], equal to the unpacked
    model's.

    Its inputs are checked on the host at every entry point, as
    `BertModel`'s are (`InputLimits.check_packed`): arrays at once,
    `PackedBatches` whole (their unpacked rows) before the first step,
    other batch objects as they come.  `predict` is refused: packed batches
    come shuffled, so its outputs would not line up with any rows
    (`predict_on_batch` serves `kbert.inference.predict_packed`).  It is a
    view, not saved: save the `BertModel` itself.
    """

    def _check(self, x):
        return self.input_limits.check_packed(x)

    def _check_batch(self, batch):
        return self.input_limits.check_packed_batch(batch)

    def _checked_whole(self, x):
        layout = getattr(x, "batch_layout", None)
        if layout == "padded":
            raise DataError(f"a packed classifier reads PackedBatches, got {type(x).__name__}: "
                            f"use the BertModel it was made from")
        if layout != "packed":
            return None
        limits = self.input_limits
        limits.check(x.unpacked_rows())  # the unpacked rows: ids and widths
        if x.pack_len > limits.max_position_embeddings:
            raise DataError(f"pack_len {x.pack_len} exceeds max_position_embeddings "
                            f"{limits.max_position_embeddings}")
        return True

    def predict(self, *args, **kwargs):
        # Packed batches come in their shuffled training order: outputs
        # concatenated batch after batch would not line up with the rows.
        raise ConfigError("a packed classifier trains; predict with the BertModel it was made from")


def packed_classifier(model):
    """The `PackedClassifier` view of `model` (a `BertModel` with `num_labels`).

    Raises:
        ConfigError: `model` is no classifier, or has a task embedding (its
            ids are per example, not per token).
    """
    if not isinstance(model, BertModel) or model.num_labels is None or model.head != "sequence":
        raise ConfigError("packing needs a BertModel sequence classifier (num_labels set, head 'sequence')")
    if model.task_num is not None:
        raise ConfigError("packing does not carry task ids (task_num): train this model with --no-packing")
    cls = keras.Input(shape=(), dtype="int32", name=PACKED_INPUTS[0])
    token_ids, segment_ids, positions, example_ids = (
        keras.Input(shape=(None,), dtype="int32", name=name) for name in PACKED_INPUTS[1:])
    layer = model.get_layer
    embedded, _ = layer("Embedding-Token")(token_ids)  # [R, L, D]
    x = layer("Embedding-Token-Segment")([embedded, layer("Embedding-Segment")(segment_ids)])
    x = layer("Embedding-Position")(x, positions=positions)
    x = layer("Embedding-Norm")(layer("Embedding-Dropout")(x))
    mask = PackingMask(name="Packing-Mask")(example_ids)  # [R, L, L]
    for n in range(1, model.bert_config.num_hidden_layers + 1):
        x = encoder_block(x, mask, model.bert_config, n, layer=layer)
    pooled = PackingGather(name="Packing-Gather")(x, cls)  # [N, D]
    pooled = layer("Classifier-Dropout")(layer("NSP-Dense")(pooled))
    logits = layer("Classifier-Dense")(pooled)  # [N, labels]
    packed = PackedClassifier(inputs=[cls, token_ids, segment_ids, positions, example_ids], outputs=logits,
                              name=f"{model.name}_packed")
    # The same variables in the same order: an optimizer built by one serves
    # the other (model.keras stores the optimizer's slots by position).
    if [id(v) for v in packed.trainable_variables] != [id(v) for v in model.trainable_variables]:
        raise ConfigError(f"{model.name}: the packed view orders the variables differently")
    packed.input_limits = model.input_limits  # what the shared layers accept
    return packed


def pretraining_model(bert):
    """A Keras model on `bert`'s own layers (weights shared) for the
    pre-training loss: inputs `Input-Token`, `Input-Segment` [B, T] and
    `Input-Positions` [B, P]; outputs {"mlm": logits [B, P, V] at those
    positions, "nsp": next-sentence probabilities [B, 2]}."""
    if not getattr(bert, "training_heads", False):
        raise ConfigError("pretraining_model needs a BertModel built with training=True (the MLM and NSP heads)")
    if bert.task_num is not None:
        raise ConfigError("pre-training does not feed Input-Task; build the model without task_num")
    inputs = {tensor.name: tensor for tensor in bert.inputs}
    positions = keras.Input(shape=(None,), dtype="int32", name="Input-Positions")
    sequence = bert.get_layer(f"Encoder-{bert.bert_config.num_hidden_layers}-FeedForward-Norm").output  # [B, T, H]
    chosen = keras.ops.take_along_axis(sequence, positions[:, :, None], axis=1)  # [B, P, H]
    hidden = bert.get_layer("MLM-Norm")(bert.get_layer("MLM-Dense")(chosen))
    matrix = bert.get_layer("Embedding-Token").output[1]  # [V, H]
    logits = bert.get_layer("MLM-Sim")([hidden, matrix], logits=True)  # [B, P, V]
    nsp = bert.get_layer("NSP").output  # [B, 2]
    return keras.Model([inputs["Input-Token"], inputs["Input-Segment"], positions], {"mlm": logits, "nsp": nsp},
                       name="pretraining")


def student_trainer(student, width):
    """The student with a learned projection of its sentence vector (what
    `Student-Dropout` reads) to the teacher's pooled width, output after
    its logits: [B, C + width].  What trains with a pooled-representation
    loss; the student alone is saved."""
    features = student.get_layer("Student-Dropout").input
    projected = keras.layers.Dense(width, name="Student-Pooled-Projection")(features)
    outputs = keras.layers.Concatenate(name="Student-Trainer-Outputs")([student.output, projected])
    return keras.Model(student.input, outputs, name="student_trainer")


def sequence_output_model(model):
    """A Keras model from `model`'s token and segment inputs to its last
    encoder layer's output [B, T, H] (a `BertModel` of any head)."""
    last = model.get_layer(f"Encoder-{model.bert_config.num_hidden_layers}-FeedForward-Norm").output
    return keras.Model(model.inputs[:2], last, name=f"{model.name}_sequence")


def pooled_output_model(model):
    """A Keras model from `model`'s token and segment inputs to its pooled
    `[CLS]` vector [B, H] (`NSP-Dense`, the input of a classifier head)."""
    return keras.Model(model.inputs[:2], model.get_layer("NSP-Dense").output, name=f"{model.name}_pooled")


def stacked_span_logits(model):
    """A view of a span model (`BertModel(head="span")`) on its own layers
    whose one output stacks the start and end logits, [B, 2, T]: what a
    single loss against [B, 2] (start, end) targets trains."""
    if getattr(model, "head", None) != "span":
        raise ConfigError(f"stacked_span_logits reads a span head's start and end logits; the model's head is "
                          f"{getattr(model, 'head', None)!r}")
    start, end = model.outputs  # [B, T] each
    stacked = keras.layers.Concatenate(axis=1, name="Span-Stack")(
        [keras.layers.Reshape((1, -1))(start), keras.layers.Reshape((1, -1))(end)])  # [B, 2, T]
    return keras.Model(model.inputs, stacked, name="span_training_view")
