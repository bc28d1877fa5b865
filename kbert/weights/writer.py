"""Write tensors as an original-format TF checkpoint (`.index` + `.data-00000-of-00001`)."""

import numpy as np


def write_original_checkpoint(prefix, tensors):
    """Write `{name: array}` with TF's SaveV2, the op `tf.train.Saver` runs.

    The result is what `tf.train.load_checkpoint` and Google's
    `init_from_checkpoint` read.
    """
    import tensorflow as tf

    names = sorted(tensors)
    values = [tf.constant(np.ascontiguousarray(tensors[n])) for n in names]
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=values,
    )
