"""Evaluate a fine-tuned teacher (or a distilled student) on a labeled TSV.

The report has the original's shape (`eval_accuracy`, `eval_loss`,
`global_step`, `loss`) plus the task's GLUE metric: CoLA's Matthews
correlation, MRPC's accuracy and F1, STS-B's Pearson and Spearman.
"""

import logging
import os
import time

import numpy as np

from kbert import runs
from kbert.errors import ConfigError, DataError
from kbert.numeric import log_softmax
from kbert.options import head_task

logger = logging.getLogger(__name__)

EVAL_BATCH_SIZE = 64


def encode_examples(tokenizer, examples, max_seq_len):
    from kbert.glue import split_texts

    firsts, seconds = split_texts(examples)
    return tokenizer.encode_batch(firsts, seconds, max_len=max_seq_len)


def _loss(logits, labels, regression):
    if regression:
        return float(np.mean((logits.reshape(-1) - labels.astype(np.float64)) ** 2))
    log_probs = log_softmax(logits)
    return float(-np.mean(log_probs[np.arange(len(labels)), labels.astype(np.int64)]))


def evaluate(model_dir, task=None, *, file=None, data_dir=None, batch_size=EVAL_BATCH_SIZE, verbose=True,
             verify=False, packing=True):
    """Evaluate the run in `model_dir` on the task's dev set or on `file`
    (for a CoNLL or SQuAD run, its `--dev` file unless `file` is given).

    Writes `eval_results.txt` (or `eval_results_<file stem>.txt`) into
    `model_dir` and returns the results dict.  `verify=True` checks the
    run's files against the hashes run.json records first; `packing=False`
    reads a BERT classifier's rows in length-sorted batches instead of
    packed where packing pays (the same logits: `predict_bucketed`).
    """
    from tqdm.auto import tqdm

    from kbert.glue import compute_metrics, get_processor, resolve_data_dir, write_eval_results
    from kbert.inference import predict_bucketed

    model, record = runs.load_model(model_dir, verify=verify)
    if head_task(record.task):
        return _evaluate_head_run(model_dir, model, record, task, file, batch_size, verbose)
    processor = get_processor(task or record.task)
    if processor.name != record.task:
        raise ConfigError(f"{model_dir}: the model was trained on {record.task}, not {processor.name}")
    if file is None:
        examples = processor.dev_examples(resolve_data_dir(data_dir))
        out_name = "eval_results.txt"
    else:
        examples = processor.read_file(file, labeled=True)
        out_name = f"eval_results_{os.path.splitext(os.path.basename(file))[0]}.txt"
    if not examples:
        raise DataError(f"{file or processor.name}: no examples to evaluate")
    encoded = encode_examples(runs.load_tokenizer(model_dir, record, model), examples, record.max_seq_len)
    labels = np.array([processor.label_id(e.label) for e in examples])
    arrays = [encoded.token_ids, encoded.segment_ids][: len(model.inputs)]
    started = time.perf_counter()
    with tqdm(total=len(examples), desc="evaluate", unit="ex", disable=not verbose) as bar:
        logits = predict_bucketed(model, arrays, encoded.lengths, batch_size=batch_size, progress=bar,
                                  packing=packing)
    seconds = time.perf_counter() - started
    loss = _loss(logits, labels, processor.is_regression)
    metrics = compute_metrics(processor.name, labels, logits)
    results = write_eval_results(
        os.path.join(model_dir, out_name),
        metrics,
        eval_loss=loss,
        global_step=record.global_step,
        loss=loss,
    )
    return {
        "metrics": {f"eval_{k}": float(v) for k, v in metrics.items()},
        "eval_loss": loss,
        "global_step": record.global_step,
        "examples": len(examples),
        "truncated": int(encoded.num_truncated),
        "seconds": seconds,
        "items_per_second": len(examples) / max(seconds, 1e-9),
        "report": results,
        "path": os.path.join(model_dir, out_name),
    }


def _evaluate_head_run(model_dir, model, record, task, file, batch_size, verbose):
    """`evaluate` for a token or span run (`kbert.headtasks`)."""
    from kbert.glue import write_eval_results
    from kbert.headtasks import evaluate_head_run

    if task is not None and head_task(task) != record.task:
        raise ConfigError(f"{model_dir}: the model was trained on {record.task}, not {task}")
    tokenizer = runs.load_tokenizer(model_dir, record, model)
    metrics, examples, seconds, path = evaluate_head_run(model_dir, model, record, tokenizer, file,
                                                         batch_size=batch_size, verbose=verbose)
    out_name = "eval_results.txt" if file is None else \
        f"eval_results_{os.path.splitext(os.path.basename(file))[0]}.txt"
    report = write_eval_results(os.path.join(model_dir, out_name), metrics, global_step=record.global_step)
    return {
        "metrics": {f"eval_{k}": float(v) for k, v in metrics.items()},
        "global_step": record.global_step,
        "examples": examples,
        "truncated": 0,  # long inputs are read as windows
        "seconds": seconds,
        "items_per_second": examples / max(seconds, 1e-9),
        "report": report,
        "path": os.path.join(model_dir, out_name),
        "file": path,
    }
