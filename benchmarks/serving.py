"""Serving latency and throughput of a trained teacher and its student, beside
Hugging Face's `pipeline("text-classification")` on the teacher's weights.

    KERAS_BACKEND=tensorflow python benchmarks/serving.py \
        --teacher runs/demo/teacher --student runs/demo/student

Every row classifies raw SST-2 dev sentences, tokenization included:

* latency: one sentence per request (batch 1), `--requests` requests after
  `--warmup` ones, cycling over the dev set; p50 and p99 in milliseconds;
* throughput: the whole dev set in requests of 32 sentences, sentences/s.

Rows: kbert's `Classifier.predict` (the Keras model on this backend) for the
teacher and the student; each exported with `kbert export` and run in its
own runtime (`onnxruntime`, `tf.saved_model.load`), tokenized by kbert's
Tokenizer from the artifact's vocab.txt, each request trimmed to its longest
row; and Hugging Face's pipeline on a `BertForSequenceClassification`
holding the teacher's weights (copied through kbert's Hugging Face name
map; its logits are checked against kbert's before timing).  Everything
runs in this one process, one row after another, on the machine's CPUs.
Writes benchmarks/results/serving-<task>.{md,json} with the command.
"""

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="runs/demo/teacher", help="a fine-tuned run")
    parser.add_argument("--student", default="runs/demo/student", help="a distilled run")
    parser.add_argument("--data-dir", default=None, help="GLUE data (default: $GLUE_DIR)")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--results-dir", default=os.path.join(os.path.dirname(__file__), "results"))
    return parser.parse_args(argv)


# -- the runners: texts -> logits --------------------------------------------


def keras_runner(run_dir):
    from kbert import load_classifier

    classifier = load_classifier(run_dir)
    return lambda texts: np.array([p.logits for p in classifier.predict(texts)])


def artifact_runner(directory):
    """An exported artifact in its own runtime, with kbert's tokenizer."""
    from kbert.tokenization import Tokenizer

    manifest = json.load(open(os.path.join(directory, "serving.json")))
    tokenizer = Tokenizer.from_vocab_file(os.path.join(directory, "vocab.txt"), cased=manifest["cased"])
    path = os.path.join(directory, manifest["artifact"])
    fixed = manifest["inputs"][0]["shape"][1]
    count = len(manifest["inputs"])
    if manifest["format"] == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]

        def call(arrays):
            return session.run(None, dict(zip(names, arrays)))[0]
    else:
        import tensorflow as tf

        loaded = tf.saved_model.load(path)

        def call(arrays):
            tensors = [tf.constant(a) for a in arrays]
            return loaded.serve(tensors if count > 1 else tensors[0]).numpy()

    def run(texts):
        encoded = tokenizer.encode_batch(texts, max_len=manifest["max_seq_len"])
        width = fixed or int(encoded.lengths.max())
        return call([encoded.token_ids[:, :width], encoded.segment_ids[:, :width]][:count])

    return run


def hf_runner(run_dir):
    """Hugging Face's pipeline on a BertForSequenceClassification with the
    teacher's weights, and the model (for the agreement check)."""
    import torch
    import transformers

    from kbert import runs
    from kbert.weights import name_map

    model, record = runs.load_model(run_dir)
    config = model.bert_config
    hf_config = transformers.BertConfig(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
        hidden_act="gelu" if config.activation == "gelu_exact" else "gelu_new",
        max_position_embeddings=config.max_position_embeddings, type_vocab_size=config.type_vocab_size,
        layer_norm_eps=1e-12, num_labels=record.num_labels,
    )
    hf = transformers.BertForSequenceClassification(hf_config).eval()
    ours = {v.path: np.asarray(v.numpy()) for v in model.weights}
    state = {}
    for row in name_map.expand(name_map.HUGGING_FACE, config.num_hidden_layers):
        if row.slot in ours:
            prefix = "" if row.layer == name_map.CLASSIFIER_LAYER else "bert."
            state[prefix + row.name] = torch.from_numpy(
                np.ascontiguousarray(name_map.invert_transform(ours[row.slot], row.transform)))
    missing, unexpected = hf.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise SystemExit(f"HF weights: missing {missing}, unexpected {unexpected}")
    tokenizer = transformers.BertTokenizerFast(runs.vocab_file(run_dir), do_lower_case=not record.cased)
    pipe = transformers.pipeline("text-classification", model=hf, tokenizer=tokenizer, device=-1, top_k=None,
                                 truncation=True, max_length=record.max_seq_len)

    def logits(texts):
        with torch.no_grad():
            enc = tokenizer(texts, padding=True, truncation=True, max_length=record.max_seq_len,
                            return_tensors="pt")
            return hf(**enc).logits.numpy()

    return (lambda texts: pipe(texts, batch_size=len(texts))), logits


# -- timing -------------------------------------------------------------------


def latency(run, sentences, requests, warmup):
    for i in range(warmup):
        run([sentences[i % len(sentences)]])
    times = []
    for i in range(requests):
        started = time.perf_counter()
        run([sentences[i % len(sentences)]])
        times.append(time.perf_counter() - started)
    times = np.array(times) * 1000
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def throughput(run, sentences, batch_size):
    run(sentences[:batch_size])  # warm: compilation and caches
    started = time.perf_counter()
    for start in range(0, len(sentences), batch_size):
        run(sentences[start:start + batch_size])
    return len(sentences) / (time.perf_counter() - started)


def main(argv=None):
    args = parse_args(argv)
    import keras

    from kbert import runs
    from kbert.glue import get_processor, resolve_data_dir
    from kbert.serving import EXPORTED_BY, export_run

    record = runs.read_run(args.teacher)
    sentences = [e.text_a for e in get_processor(record.task).dev_examples(resolve_data_dir(args.data_dir))]
    backend = keras.backend.backend()
    rows = []

    def measure(name, run):
        p50, p99 = latency(run, sentences, args.requests, args.warmup)
        rate = throughput(run, sentences, args.batch_size)
        rows.append({"name": name, "p50_ms": p50, "p99_ms": p99, "sentences_per_second": rate})
        print(json.dumps(rows[-1]), flush=True)

    hf_pipe, hf_logits = hf_runner(args.teacher)
    teacher_keras = keras_runner(args.teacher)
    agreement = float(np.abs(hf_logits(sentences[:64]) - teacher_keras(sentences[:64])).max())
    print(f"HF and kbert teacher logits differ by at most {agreement:.2e}", flush=True)

    measure("kbert teacher, Keras", teacher_keras)
    measure("kbert student, Keras", keras_runner(args.student))
    work = tempfile.mkdtemp(prefix="kbert-serving-")
    for kind, run_dir in (("teacher", args.teacher), ("student", args.student)):
        for format in ("onnx", "tf_saved_model"):
            if backend not in EXPORTED_BY[format]:
                continue
            out = os.path.join(work, f"{kind}-{format}")
            export_run(run_dir, out, format)
            runtime = "onnxruntime" if format == "onnx" else "TF SavedModel"
            measure(f"kbert {kind}, {runtime}", artifact_runner(out))
    measure("HF pipeline, teacher weights", hf_pipe)
    write_report(args, record, rows, agreement, backend)


def write_report(args, record, rows, agreement, backend):
    from kbert.atomic import write_json, write_text_atomic

    hf = next(r for r in rows if r["name"].startswith("HF"))
    command = f"KERAS_BACKEND={backend} python benchmarks/serving.py " + " ".join(map(shlex.quote, sys.argv[1:]))
    lines = [
        f"# Serving: {record.task} dev sentences, batch 1 latency and batch {args.batch_size} throughput",
        "",
        f"Command: `{command}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (run it on an idle machine); "
        f"{args.requests} timed requests after {args.warmup} warm-up ones; tokenization included.",
        f"HF's logits on the teacher's weights agree with kbert's within {agreement:.1e}.",
        "",
        "| runner | p50 ms (batch 1) | p99 ms (batch 1) | HF pipeline's p50 / this p50 | sentences/s (batch "
        f"{args.batch_size}) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['name']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                     f"{hf['p50_ms'] / r['p50_ms']:.2f}x | {r['sentences_per_second']:.0f} |")
    lines.append("")
    os.makedirs(args.results_dir, exist_ok=True)
    stem = os.path.join(args.results_dir, f"serving-{record.task.lower()}")
    write_text_atomic(stem + ".md", "\n".join(lines))
    write_json(stem + ".json", {"command": command, "rows": rows, "hf_agreement": agreement})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
