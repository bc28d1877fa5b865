"""An independent NumPy float64 forward pass of Google's modeling.py.

It reads weights by their original checkpoint names and follows the
original's arithmetic: embeddings (word + token type + position) ->
LayerNorm(eps 1e-12) -> L x [self-attention with `(1 - mask) * -10000` added to
the scores, dense, residual, LayerNorm, gelu FFN, residual, LayerNorm] ->
pooler (tanh dense on [CLS]) -> heads.

Shape legend: B batch, T sequence, N heads, H head size, D hidden.
"""

import math

import numpy as np


def gelu(x, approximate=True):
    if approximate:  # modeling.py's gelu
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def forward(w, config, token_ids, segment_ids, *, approximate_gelu=True):
    """Returns a dict of named outputs (keras-bert layer names)."""
    w = {k: np.asarray(v, np.float64) for k, v in w.items()}
    token_ids, segment_ids = np.asarray(token_ids), np.asarray(segment_ids)
    b, t = token_ids.shape
    n = config["num_attention_heads"]
    d = config["hidden_size"]
    h = d // n
    out = {}
    x = (
        w["bert/embeddings/word_embeddings"][token_ids]
        + w["bert/embeddings/token_type_embeddings"][segment_ids]
        + w["bert/embeddings/position_embeddings"][:t][None]
    )
    x = layer_norm(x, w["bert/embeddings/LayerNorm/gamma"], w["bert/embeddings/LayerNorm/beta"])
    out["Embedding-Norm"] = x
    adder = (1.0 - (token_ids != 0)[:, None, None, :]) * -10000.0  # [B, 1, 1, T]
    for layer in range(config["num_hidden_layers"]):
        p = f"bert/encoder/layer_{layer}"

        def dense(v, name):
            return v @ w[f"{name}/kernel"] + w[f"{name}/bias"]

        def heads(v):
            return v.reshape(b, t, n, h).transpose(0, 2, 1, 3)  # [B, N, T, H]

        q = heads(dense(x, f"{p}/attention/self/query"))
        k = heads(dense(x, f"{p}/attention/self/key"))
        v = heads(dense(x, f"{p}/attention/self/value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(h) + adder  # [B, N, F, T]
        out[f"Encoder-{layer + 1}-Attention-Probabilities"] = softmax(scores)
        context = (softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(b, t, d)
        attn = dense(context, f"{p}/attention/output/dense")
        x = layer_norm(
            x + attn, w[f"{p}/attention/output/LayerNorm/gamma"], w[f"{p}/attention/output/LayerNorm/beta"]
        )
        out[f"Encoder-{layer + 1}-MultiHeadSelfAttention-Norm"] = x
        inner = gelu(dense(x, f"{p}/intermediate/dense"), approximate_gelu)
        x = layer_norm(
            x + dense(inner, f"{p}/output/dense"),
            w[f"{p}/output/LayerNorm/gamma"],
            w[f"{p}/output/LayerNorm/beta"],
        )
        out[f"Encoder-{layer + 1}-FeedForward-Norm"] = x
    out["sequence"] = x
    if "bert/pooler/dense/kernel" in w:
        pooled = np.tanh(x[:, 0] @ w["bert/pooler/dense/kernel"] + w["bert/pooler/dense/bias"])
        out["NSP-Dense"] = pooled
        if "cls/seq_relationship/output_weights" in w:
            out["NSP"] = softmax(
                pooled @ w["cls/seq_relationship/output_weights"].T + w["cls/seq_relationship/output_bias"]
            )
        if "output_weights" in w:
            out["logits"] = pooled @ w["output_weights"].T + w["output_bias"]
    if "cls/predictions/output_bias" in w:
        m = gelu(
            x @ w["cls/predictions/transform/dense/kernel"] + w["cls/predictions/transform/dense/bias"],
            approximate_gelu,
        )
        m = layer_norm(
            m, w["cls/predictions/transform/LayerNorm/gamma"], w["cls/predictions/transform/LayerNorm/beta"]
        )
        out["MLM-Sim"] = softmax(
            m @ w["bert/embeddings/word_embeddings"].T + w["cls/predictions/output_bias"]
        )
    return out
