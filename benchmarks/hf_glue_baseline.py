"""The peer for the GLUE results: Hugging Face transformers fine-tuning the same
MiniLM weights on the same data with the same recipe, in PyTorch, so kbert's
numbers in benchmarks/results/glue-*.md can be set beside a peer measured on
this machine rather than a number quoted from elsewhere.

    python benchmarks/hf_glue_baseline.py --task MRPC --epochs 3 --learning-rate 5e-5 --seed 7

Recipe (the baseline's): batch 32, max length 128, AdamW (weight decay
0.01 except biases and LayerNorm, transformers' default epsilon 1e-8), 10%
linear warmup then linear decay to 0, gradient clipping at 1.0, random
batches reshuffled every epoch, `BertForSequenceClassification` on the
pooled output.  Data: kbert's GLUE readers (the same rows kbert trains on),
tokenized by the peer's own `BertTokenizerFast`.  Dev metrics: kbert's
`compute_metrics` (scikit-learn).  Writes benchmarks/results/hf-glue-*.md with
the command, wall time and machine.  Not part of CI: minutes to an hour on
2 cores.
"""

import argparse
import math
import os
import platform
import sys
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-train-examples", type=int, default=None,
                        help="the first N after a seeded shuffle (a quick check)")
    parser.add_argument("--data-dir", default=None, help="GLUE data (default: $GLUE_DIR)")
    parser.add_argument("--results-dir", default=os.path.join(os.path.dirname(__file__), "results"))
    return parser.parse_args(argv)


def encode(tokenizer, examples, max_seq_len):
    first = [e.text_a for e in examples]
    second = [e.text_b for e in examples] if examples[0].text_b is not None else None
    # "longest_first" is the original's _truncate_seq_pair: drop from the longer.
    return tokenizer(first, second, truncation="longest_first", max_length=max_seq_len)


def adamw(model, learning_rate):
    """The peer's optimizer: AdamW, weight decay 0.01 except biases and
    LayerNorm, transformers' default epsilon 1e-8."""
    import torch

    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
         "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
         "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=learning_rate, eps=1e-8)


def batches(encoded, labels, order, batch_size, tokenizer):
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        features = [{key: encoded[key][i] for key in encoded} for i in rows]
        batch = tokenizer.pad(features, return_tensors="pt")  # pad to the batch's longest row
        yield batch, labels[rows]


def main(argv=None):
    args = parse_args(argv)
    import torch
    import transformers
    from tqdm import tqdm

    from kbert import presets
    from kbert.atomic import write_text_atomic
    from kbert.glue import compute_metrics, get_processor, resolve_data_dir

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    processor = get_processor(args.task)
    data_dir = resolve_data_dir(args.data_dir)
    train = processor.train_examples(data_dir)
    dev = processor.dev_examples(data_dir)
    if args.max_train_examples:
        train = [train[i] for i in np.sort(rng.permutation(len(train))[:args.max_train_examples])]
    path = presets.preset_path("minilm-l6")
    tokenizer = transformers.BertTokenizerFast.from_pretrained(path)
    model = transformers.BertForSequenceClassification.from_pretrained(path, num_labels=processor.num_labels)
    dtype = torch.float if processor.is_regression else torch.long
    train_labels = torch.tensor([processor.label_id(e.label) for e in train], dtype=dtype)
    dev_labels = np.array([processor.label_id(e.label) for e in dev])
    train_encoded = encode(tokenizer, train, args.max_seq_len)
    dev_encoded = encode(tokenizer, dev, args.max_seq_len)

    optimizer = adamw(model, args.learning_rate)
    steps = math.ceil(len(train) / args.batch_size) * args.epochs
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)

    start = time.perf_counter()
    model.train()
    for epoch in range(args.epochs):
        order = rng.permutation(len(train))
        bar = tqdm(total=len(train), desc=f"HF epoch {epoch + 1}", unit="ex")
        for batch, labels in batches(train_encoded, train_labels, order, args.batch_size, tokenizer):
            loss = model(**batch, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            bar.update(len(labels))
            bar.set_postfix(loss=f"{loss.item():.4f}")
        bar.close()
    train_seconds = time.perf_counter() - start

    model.eval()
    logits = []
    with torch.no_grad():
        for batch, _ in batches(dev_encoded, dev_labels, np.arange(len(dev)), 64, tokenizer):
            logits.append(model(**batch).logits.numpy())
    logits = np.concatenate(logits)
    predictions = logits[:, 0] if processor.is_regression else logits
    metrics = compute_metrics(processor.name, dev_labels, predictions)

    command = " ".join(["python", "benchmarks/hf_glue_baseline.py", *(sys.argv[1:] if argv is None else argv)])
    lines = [
        f"# HF transformers baseline, GLUE {processor.name}: MiniLM-L6, {args.epochs} epoch(s), "
        f"lr {args.learning_rate:g}, seed {args.seed}",
        "",
        f"Command: `{command}`",
        "",
        f"Training: {train_seconds:.0f} s ({len(train) * args.epochs / train_seconds:.1f} examples/s), "
        f"{len(train)} examples. Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}.",
        "",
        "```",
        *[f"eval_{name} = {value:.7g}" for name, value in metrics.items()],
        "```",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.max_train_examples:
        name = f"hf-glue-{processor.name.lower()}-e{args.epochs}-lr{args.learning_rate:g}-s{args.seed}.md"
        os.makedirs(args.results_dir, exist_ok=True)
        write_text_atomic(os.path.join(args.results_dir, name), text)


if __name__ == "__main__":
    main()
