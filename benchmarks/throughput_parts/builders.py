"""One builder per implementation: `build(model, variant) -> (predict, info)`.

`predict(token_ids, segment_ids)` runs one batch of int arrays and returns
host arrays; `info` holds the record fields the implementation adds
("weights", and for transformers its attention kernel and threads).

    kbert          `BertModel`: bert-base, bert-large and minilm-l3-student
                   (the transformer student's shape) with random weights,
                   minilm-l6 the real checkpoint (`load_checkpoint`); the
                   variant applied by `kbert.variants.apply_variant`
    kbert-student  the students (`kbert.build_student`): Kim (2014)'s CNN and
                   Tang et al.'s BiLSTM, on a random 30522 x 384 embedding
    transformers   Hugging Face `BertModel` (PyTorch, eval mode,
                   `torch.no_grad()`, no pooler), the same configs with random
                   init; minilm-l6 from the preset's directory
    keras-hub      `keras_hub.models.BertBackbone` of the same shapes, random
                   weights (minilm-l6 too: no conversion is attempted)

The peers are imported inside their builders: a worker imports only the
implementation it runs, and one that is not installed fails its own build.
"""

import numpy as np

from benchmarks.throughput_parts.flops import MINILM, STUDENT_MODELS, VOCAB_SIZE, bert_config
from kbert import BertModel, build_student, load_checkpoint
from kbert.presets import preset_path
from kbert.variants import apply_variant


def keras_predict(model, make_inputs):
    """`predict_on_batch` on the model's inputs made from (ids, segs)."""

    def predict(ids, segs):
        return model.predict_on_batch(make_inputs(ids, segs))

    return predict


def build_kbert(model, variant):
    net = load_checkpoint(MINILM) if model == MINILM else BertModel(bert_config(model))
    apply_variant(net, variant)
    weights = "checkpoint" if model == MINILM else "random"
    return keras_predict(net, lambda ids, segs: [ids, segs]), {"weights": weights}


def build_kbert_student(model, variant):
    spec = STUDENT_MODELS[model]
    matrix = np.random.default_rng(0).uniform(-0.25, 0.25, (VOCAB_SIZE, spec["embedding_dim"]))
    shape = {k: spec[k] for k in ("filters", "kernel_sizes", "units", "hidden") if k in spec}
    net = build_student(matrix.astype(np.float32), spec["num_labels"], student=spec.get("student", "cnn"),
                        variant=spec["variant"], **shape)
    return keras_predict(net, lambda ids, segs: ids), {"weights": "random"}


def build_keras_hub(model, variant):
    import keras_hub

    config = bert_config(model)
    net = keras_hub.models.BertBackbone(
        vocabulary_size=config["vocab_size"],
        num_layers=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"],
        hidden_dim=config["hidden_size"],
        intermediate_dim=config["intermediate_size"],
        max_sequence_length=config["max_position_embeddings"],
        num_segments=config["type_vocab_size"],
    )

    def inputs(ids, segs):
        return {"token_ids": ids, "segment_ids": segs, "padding_mask": ids != 0}

    return keras_predict(net, inputs), {"weights": "random"}


def build_transformers(model, variant):
    import torch
    import transformers

    if model == MINILM:
        net = transformers.BertModel.from_pretrained(
            preset_path(MINILM), add_pooling_layer=False, dtype=torch.float32
        )
    else:
        # kbert's "gelu" is the original's tanh form; HF's "gelu" is erf.
        config = transformers.BertConfig(**bert_config(model), hidden_act="gelu_pytorch_tanh")
        net = transformers.BertModel(config, add_pooling_layer=False)
    net.eval()

    def predict(ids, segs):
        ids = torch.from_numpy(ids).long()
        with torch.no_grad():
            out = net(input_ids=ids, token_type_ids=torch.from_numpy(segs).long(), attention_mask=(ids != 0).long())
        return out.last_hidden_state

    info = {
        "weights": "checkpoint" if model == MINILM else "random",
        "attn_implementation": getattr(net.config, "_attn_implementation", None),
        "torch_threads": torch.get_num_threads(),
    }
    return predict, info


BUILDERS = {
    "kbert": build_kbert,
    "kbert-student": build_kbert_student,
    "keras-hub": build_keras_hub,
    "transformers": build_transformers,
}
