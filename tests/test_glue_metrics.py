"""GLUE metrics against formulas written out here in numpy, and the
eval_results.txt writer."""

import math

import numpy as np
import pytest

from kbert.errors import DataError
from kbert.glue import compute_metrics, format_eval_results, write_eval_results

pytestmark = pytest.mark.keras_free


def _counts(y, p):
    tp = np.sum((y == 1) & (p == 1))
    tn = np.sum((y == 0) & (p == 0))
    fp = np.sum((y == 0) & (p == 1))
    fn = np.sum((y == 1) & (p == 0))
    return float(tp), float(tn), float(fp), float(fn)


def mcc(y, p):
    tp, tn, fp, fn = _counts(y, p)
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denominator == 0 else (tp * tn - fp * fn) / denominator


def f1(y, p):
    tp, _, fp, fn = _counts(y, p)
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def pearson(x, y):
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


def ranks(x):
    """Ranks 1..n, ties sharing their average rank."""
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        r[tied] = r[tied].mean()
    return r


def spearman(x, y):
    return pearson(ranks(x), ranks(y))


@pytest.fixture
def binary():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    predictions = np.where(rng.random(200) < 0.8, labels, 1 - labels)
    return labels, predictions


@pytest.mark.parametrize("task, metric, logits", [("cola", "mcc", False), ("MRPC", "f1", True)])
def test_a_task_with_a_second_metric(binary, task, metric, logits):
    labels, predictions = binary
    if logits:  # predictions given as logits are read by their argmax
        predictions_in = np.stack([-predictions.astype(float), predictions.astype(float)], axis=1) + 0.3
    else:
        predictions_in = predictions
    result = compute_metrics(task, labels, predictions_in)
    assert set(result) == {"accuracy", metric}
    assert result["accuracy"] == pytest.approx(np.mean(labels == predictions))
    assert result[metric] == pytest.approx({"mcc": mcc, "f1": f1}[metric](labels, predictions))


def test_accuracy_only_tasks(binary):
    labels, predictions = binary
    for task in ("sst-2", "rte", "wnli"):
        assert compute_metrics(task, labels, predictions) == {"accuracy": pytest.approx(np.mean(labels == predictions))}


def test_stsb_with_ties():
    rng = np.random.default_rng(1)
    labels = np.round(rng.uniform(0, 5, 300) * 4) / 4  # many ties, like real scores
    predictions = (labels + rng.normal(0, 1, 300)).reshape(-1, 1)
    result = compute_metrics("sts-b", labels, predictions)
    assert set(result) == {"pearson", "spearman"}
    assert result["pearson"] == pytest.approx(pearson(labels, predictions[:, 0]))
    assert result["spearman"] == pytest.approx(spearman(labels, predictions[:, 0]))


def test_degenerate_inputs():
    assert compute_metrics("cola", [1, 1, 1], [1, 1, 1])["mcc"] == 0.0
    assert compute_metrics("mrpc", [0, 0], [0, 0])["f1"] == 0.0
    assert math.isnan(compute_metrics("sts-b", [1.0, 2.0, 3.0], [2.0, 2.0, 2.0])["pearson"])
    with pytest.raises(DataError, match="3 labels but 2 predictions"):
        compute_metrics("sst-2", [0, 1, 1], [0, 1])
    with pytest.raises(DataError, match="no examples"):
        compute_metrics("sst-2", [], [])


def test_eval_results_shape(tmp_path):
    path = tmp_path / "eval_results.txt"
    text = write_eval_results(
        path, {"accuracy": 0.9151376146788991, "mcc": 0.5}, eval_loss=0.30129, global_step=6313, loss=0.2
    )
    assert path.read_text() == text
    assert text.splitlines() == [
        "eval_accuracy = 0.9151376",
        "eval_loss = 0.30129",
        "eval_mcc = 0.5",
        "global_step = 6313",
        "loss = 0.2",
    ]
    assert format_eval_results({"b": np.float32(0.25), "a": np.int64(3)}) == "a = 3\nb = 0.25\n"
    assert [p.name for p in tmp_path.iterdir()] == ["eval_results.txt"]  # no temp file left
