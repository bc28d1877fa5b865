"""GLUE metrics and the `eval_results.txt` file of `run_classifier.py`.

Every classification task reports accuracy; CoLA adds Matthews
correlation (`mcc`), MRPC adds the F1 of the positive class (`f1`), and
the regression task STS-B reports Pearson and Spearman correlations.
scikit-learn and scipy are the `glue` extra of kbert, so they are imported
when a metric is computed, not when kbert is.
"""

import math
import warnings
from typing import Mapping

import numpy as np

from kbert.atomic import write_text_atomic
from kbert.errors import DataError
from kbert.glue.processors import get_processor


def _as_predictions(predictions, regression: bool) -> np.ndarray:
    """Class ids from ids or logits; scores from a (N,) or (N, 1) array."""
    predictions = np.asarray(predictions)
    if regression:
        return predictions.reshape(len(predictions), -1)[:, 0].astype(np.float64)
    if predictions.ndim == 2:
        return predictions.argmax(axis=-1)
    return predictions.astype(np.int64)


def compute_metrics(task_name: str, labels, predictions) -> dict:
    """The task's GLUE metrics as a dict of Python floats.

    `labels` are label ids (as `TaskProcessor.label_id` gives) or STS-B
    scores; `predictions` are class ids, per-class logits of shape (N, C),
    or predicted scores.  Keys are the processor's `metric_names`.
    A correlation of constant predictions is undefined and comes back NaN.
    """
    processor = get_processor(task_name)
    labels = np.asarray(labels)
    predictions = _as_predictions(predictions, processor.is_regression)
    if labels.shape[0] != predictions.shape[0]:
        raise DataError(
            f"{processor.name} metrics: {labels.shape[0]} labels but "
            f"{predictions.shape[0]} predictions"
        )
    if labels.shape[0] == 0:
        raise DataError(f"{processor.name} metrics: no examples to score")
    results = {}
    for name in processor.metric_names:
        results[name] = float(_METRICS[name](labels, predictions))
    return results


def _accuracy(labels, predictions):
    return np.mean(labels.astype(np.int64) == predictions)


def _mcc(labels, predictions):
    from sklearn.metrics import matthews_corrcoef

    # A batch holding one class only is legitimate (MCC is then 0);
    # sklearn's warning about the confusion matrix shape is noise here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return matthews_corrcoef(labels.astype(np.int64), predictions)


def _f1(labels, predictions):
    from sklearn.metrics import f1_score

    # zero_division=0: no predicted and no true positives scores 0, quietly.
    return f1_score(labels.astype(np.int64), predictions, pos_label=1, zero_division=0)


def _correlation(function):
    def metric(labels, predictions):
        labels = labels.astype(np.float64)
        # scipy warns and returns NaN on constant input; say NaN without noise.
        if np.ptp(labels) == 0 or np.ptp(predictions) == 0:
            return math.nan
        return function(labels, predictions)[0]

    return metric


def _pearson(labels, predictions):
    from scipy.stats import pearsonr

    return _correlation(pearsonr)(labels, predictions)


def _spearman(labels, predictions):
    from scipy.stats import spearmanr

    return _correlation(spearmanr)(labels, predictions)


_METRICS = {
    "accuracy": _accuracy,
    "mcc": _mcc,
    "f1": _f1,
    "pearson": _pearson,
    "spearman": _spearman,
}


# -- eval_results.txt -----------------------------------------------------


def _format_value(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    # Seven significant digits: what str() of the original's float32
    # results printed (e.g. "eval_accuracy = 0.9151376").
    return format(float(value), ".7g")


def eval_results(metrics: Mapping[str, float], **scalars) -> dict:
    """Metrics renamed `eval_<name>`, merged with scalars like eval_loss, global_step."""
    results = {f"eval_{name}": value for name, value in metrics.items()}
    results.update(scalars)
    return results


def format_eval_results(results: Mapping[str, float]) -> str:
    """`key = value` lines sorted by key, as run_classifier writes them."""
    return "".join(f"{key} = {_format_value(results[key])}\n" for key in sorted(results))


def write_eval_results(path, metrics: Mapping[str, float], **scalars) -> str:
    """Write `eval_results.txt` atomically and return its text.

    `metrics` are `compute_metrics` results (written `eval_<name>`);
    `scalars` are written under their own names, e.g.
    `write_eval_results(path, metrics, eval_loss=0.31, global_step=3000, loss=0.29)`.
    """
    text = format_eval_results(eval_results(metrics, **scalars))
    write_text_atomic(path, text)
    return text
