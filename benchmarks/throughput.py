"""Inference throughput: kbert's teachers and students against their peers.

Sentences per second of inference forward passes (no gradients, dropout
off) over the SST-2 dev sentences, tokenized with MiniLM's uncased
vocabulary, for kbert's `BertModel` (bert-base, bert-large, minilm-l6, and
minilm-l3-student, the transformer student cut from MiniLM), its CNN and
BiLSTM students, Hugging Face transformers and keras-hub, on each Keras backend
asked for (transformers runs on PyTorch only), at each batch size, in two
modes:

    padded    batches in file order, every one padded to --max-seq-len (128)
    bucketed  `kbert.batching.length_buckets`: sorted by length, each batch
              trimmed to its longest row rounded up to a multiple of 8

"gflops_per_second" counts the processed FLOPs; "useful_gflops_per_second"
those of the sentences' real lengths; every row also reports its fraction of
the machine's float32 matmul peak.  Variants (kbert teachers only,
--variants) are `kbert.variants`: "xla" (TensorFlow) and "int8", speed only:
check accuracy elsewhere.

The parts live in `benchmarks/throughput_parts/`, each documented where its
code is: the implementations (builders.py), the timing method (timing.py),
the FLOP formulas (flops.py), one subprocess per backend (workers.py), the
report (report.py).

    python benchmarks/throughput.py --quick --json benchmarks/results/throughput-quick.json
"""

import pathlib
import sys

# Run as a script, Python puts benchmarks/ on the path, not the repository
# root that holds the `benchmarks` package; the workers run this file too.
REPO = str(pathlib.Path(__file__).resolve().parents[1])
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from benchmarks.throughput_parts.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
