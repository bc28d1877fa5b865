"""kbert's Keras layers, one per file, all written with `keras.ops` only."""

from kbert.layers.embedding_similarity import EmbeddingSimilarity
from kbert.layers.embedding_sum import EmbeddingSum
from kbert.layers.extract import Extract
from kbert.layers.feed_forward import FeedForward
from kbert.layers.layerwise_distillation import LayerwiseDistillation
from kbert.layers.masked_output import MaskedOutput
from kbert.layers.multi_head_self_attention import MultiHeadSelfAttention
from kbert.layers.packing_gather import PackingGather
from kbert.layers.packing_mask import PackingMask
from kbert.layers.padding_mask import PaddingMask
from kbert.layers.position_embedding import PositionEmbedding
from kbert.layers.span_split import SpanSplit
from kbert.layers.student_bilstm import StudentBiLSTM
from kbert.layers.student_conv import StudentConv
from kbert.layers.student_embedding import StudentEmbedding
from kbert.layers.student_pair_match import StudentPairMatch
from kbert.layers.student_pair_split import StudentPairSplit
from kbert.layers.student_pool import StudentPool
from kbert.layers.task_embedding import TaskEmbedding
from kbert.layers.token_embedding import TokenEmbedding

__all__ = [
    "EmbeddingSimilarity",
    "EmbeddingSum",
    "Extract",
    "FeedForward",
    "LayerwiseDistillation",
    "MaskedOutput",
    "MultiHeadSelfAttention",
    "PackingGather",
    "PackingMask",
    "PaddingMask",
    "PositionEmbedding",
    "SpanSplit",
    "StudentBiLSTM",
    "StudentConv",
    "StudentEmbedding",
    "StudentPairMatch",
    "StudentPairSplit",
    "StudentPool",
    "TaskEmbedding",
    "TokenEmbedding",
]
