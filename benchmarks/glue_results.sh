#!/usr/bin/env bash
# Fine-tune the MiniLM teacher fully on GLUE tasks and record each run's
# eval_results.txt with the exact command, wall time and machine in
# benchmarks/results/glue-TASK.md.  Not part of CI: tens of minutes on 2 cores.
#
#   benchmarks/glue_results.sh SST-2:1:3e-5 CoLA:3:5e-5 MRPC:3:5e-5
#
# Each argument is TASK:EPOCHS:LEARNING_RATE[:BATCHING[:SEED]] (batch 32,
# max_seq_len 128, AdamW with 10% warmup and linear decay: the HF-transformers
# baseline's recipe).  BATCHING "packed" / "random" / "bucketed" passes
# --no-length-bucketing --packing / --no-length-bucketing --no-packing /
# --length-bucketing --no-packing (empty: the default, random batches,
# packed); SEED passes --seed (empty: the default, 42), so a learning-rate
# search can also show the spread over seeds:  MRPC:3:3e-5::7
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_BACKEND="${KERAS_BACKEND:-jax}"
export GLUE_DIR="${GLUE_DIR:-$(cd .. && pwd)/shared/glue_data}"
mkdir -p benchmarks/results runs
for spec in "$@"; do
  IFS=: read -r task epochs lr batching seed <<<"$spec"
  name="glue-${task,,}-e${epochs}-lr${lr}${batching:+-$batching}${seed:+-s$seed}"
  out="runs/$name"
  cmd=(.venv/bin/kbert finetune --task "$task" --checkpoint minilm-l6 --output "$out"
       --epochs "$epochs" --learning-rate "$lr" --batch-size 32 --max-seq-len 128 --cache-dir runs/features)
  case "$batching" in
    "") ;;
    packed) cmd+=(--no-length-bucketing --packing) ;;
    random) cmd+=(--no-length-bucketing --no-packing) ;;
    bucketed) cmd+=(--length-bucketing --no-packing) ;;
    *) echo "unknown batching '$batching' in $spec (expected: packed, random or bucketed)" >&2; exit 2 ;;
  esac
  [ -n "$seed" ] && cmd+=(--seed "$seed")
  [ -f "$out/run.json" ] && cmd+=(--resume)
  start=$(date +%s)
  "${cmd[@]}"
  seconds=$(( $(date +%s) - start ))
  {
    echo "# GLUE $task: MiniLM-L6 teacher, $epochs epoch(s), lr $lr${batching:+, $batching batches}${seed:+, seed $seed}"
    echo
    echo "Command: \`KERAS_BACKEND=$KERAS_BACKEND ${cmd[*]}\`"
    echo
    echo "Wall time: ${seconds} s (fine-tuning and dev evaluation). Machine: $(nproc) cores,"
    echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%Y-%m-%d)."
    echo
    echo '```'
    cat "$out/eval_results.txt"
    echo '```'
  } > "benchmarks/results/$name.md"
  cat "benchmarks/results/$name.md"
done
