"""Plumbing of benchmarks/throughput.py: records, FLOP counts, skipped peers.

Not keras_free: the core function runs a tiny BERT and the student in this
process, on whichever Keras backend the suite runs on.
"""

import json
import pathlib
import sys

import keras
import numpy as np
import pytest

from kbert.atomic import write_json

REPO = pathlib.Path(__file__).resolve().parents[1]
# benchmarks/ is not installed: its package imports from the repository
# root, which throughput.py puts on the path for itself the same way.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.throughput_parts import cli, flops, report, timing, workers  # noqa: E402

BACKEND = keras.backend.backend()
RECORD_KEYS = {"impl", "backend", "model", "batch", "mode", "seq_len", "items_per_second", "gflops_per_second"}


def sentences(rng, n=8, max_len=128):
    """Right-padded token ids with [CLS]/[SEP]-like ends, lengths 3..40."""
    lengths = rng.integers(3, 41, n).astype(np.int32)
    ids = np.zeros((n, max_len), np.int32)
    for i, length in enumerate(lengths):
        ids[i, :length] = rng.integers(1000, 30000, length)
        ids[i, 0], ids[i, length - 1] = 101, 102
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "lengths": lengths}


def row(impl, model, mode, batch=4, backend=BACKEND, variant="default"):
    return dict(impl=impl, backend=backend, model=model, batch=batch, mode=mode, variant=variant)


class CountingMatmul:
    """`a @ b` on shapes only, adding its multiply-adds (2 m k n, per batch entry) to `flops`."""

    def __init__(self):
        self.flops = 0

    def __call__(self, a, b):
        *batch, m, k = a.shape
        k2, n = b.shape[-2:]
        assert k == k2, (a.shape, b.shape)
        self.flops += 2 * int(np.prod(batch, dtype=np.int64)) * m * k * n
        return np.zeros((*batch, m, n), np.float32)


def counted_bert_flops(t, *, hidden_size, num_hidden_layers, intermediate_size, num_attention_heads, **_):
    """One sentence through BERT's encoder, as modeling.py lays it out, counting its matmuls."""
    mm, h, heads = CountingMatmul(), hidden_size, num_attention_heads

    def split(a):  # [T, H] -> [N, T, H/N]
        return a.reshape(t, heads, h // heads).transpose(1, 0, 2)

    x = np.zeros((t, h), np.float32)
    for _ in range(num_hidden_layers):
        q, k, v = (mm(x, np.zeros((h, h))) for _ in range(3))  # [T, H] each
        scores = mm(split(q), split(k).transpose(0, 2, 1))  # [N, T, T]
        context = mm(scores, split(v)).transpose(1, 0, 2).reshape(t, h)  # [T, H]
        x = mm(context, np.zeros((h, h)))  # attention output
        x = mm(mm(x, np.zeros((h, intermediate_size))), np.zeros((intermediate_size, h)))  # the feed-forward
    return mm.flops


def counted_cnn_flops(t, *, embedding_dim, filters, kernel_sizes, num_labels, variant="non-static", **_):
    """Kim's CNN on one sentence, its "full" convolutions as im2col matmuls, counted."""
    mm = CountingMatmul()
    columns = embedding_dim * (2 if variant == "multichannel" else 1)
    for w in kernel_sizes:
        mm(np.zeros((t + w - 1, w * columns)), np.zeros((w * columns, filters)))  # T + w - 1 windows
    mm(np.zeros((1, filters * len(kernel_sizes))), np.zeros((filters * len(kernel_sizes), num_labels)))
    return mm.flops


def counted_bilstm_flops(t, *, embedding_dim, units, hidden, num_labels, variant="non-static", **_):
    mm = CountingMatmul()
    columns = embedding_dim * (2 if variant == "multichannel" else 1)
    for _direction in range(2):
        for _step in range(t):
            mm(np.zeros((1, columns)), np.zeros((columns, 4 * units)))  # input projection into 4 gates
            mm(np.zeros((1, units)), np.zeros((units, 4 * units)))  # the recurrent matmul
    mm(mm(np.zeros((1, 2 * units)), np.zeros((2 * units, hidden))), np.zeros((hidden, num_labels)))
    return mm.flops


@pytest.mark.parametrize("model", ["bert-base", "tiny"])
@pytest.mark.parametrize("t", [1, 7, 128])
def test_bert_flops_match_a_counted_forward_pass(model, t):
    config = flops.bert_config("bert-base") if model == "bert-base" else dict(
        hidden_size=6, num_hidden_layers=3, intermediate_size=10, num_attention_heads=2)
    assert flops.bert_flops(t, **config) == counted_bert_flops(t, **config)


def test_bert_base_flops_per_sentence_are_the_published_size():
    # BERT-base's encoder holds 85M matmul weights (Devlin et al.'s 110M less
    # the 23.8M embedding rows); a token costs two FLOPs per weight, plus attention.
    per_token = flops.flops_per_sentence("bert-base", 1)
    assert 2 * 84e6 < per_token < 2 * 86e6


@pytest.mark.parametrize("spec", [
    dict(embedding_dim=2, filters=1, kernel_sizes=(1, 2), num_labels=1),
    dict(embedding_dim=2, filters=1, kernel_sizes=(1, 2), num_labels=1, variant="multichannel"),
    dict(embedding_dim=384, filters=100, kernel_sizes=(3, 4, 5), num_labels=2),
])
@pytest.mark.parametrize("t", [1, 3, 40])
def test_cnn_student_flops_match_a_counted_forward_pass(spec, t):
    assert flops.student_flops(t, **spec) == counted_cnn_flops(t, **spec)


@pytest.mark.parametrize("t", [1, 5])
def test_bilstm_student_flops_match_a_counted_forward_pass(t):
    spec = dict(embedding_dim=6, units=4, hidden=3, num_labels=2)
    assert flops.student_flops(t, student="bilstm", **spec) == counted_bilstm_flops(t, **spec)


def test_padded_and_bucketed_batches_cover_every_sentence_once(rng):
    lengths = sentences(rng, n=10)["lengths"]
    for mode in cli.MODES:
        batches = timing.plan_batches(lengths, 4, mode, 128)
        rows = np.sort(np.concatenate([r for r, _ in batches]))
        assert rows.tolist() == list(range(10))
        for r, width in batches:
            assert width == 128 if mode == "padded" else (width % 8 == 0 and width >= lengths[r].max())


@pytest.mark.single_backend  # the benchmark's records; a tiny BERT's row on every backend: test_worker_reads_its_spec_and_writes_records
def test_measure_rows_in_process_gives_the_record_schema(rng):
    arrays = sentences(rng)
    rows = [row("kbert", "tiny", "padded"), row("kbert", "tiny", "bucketed"),
            row("kbert-student", "cnn-student", "bucketed", batch=8),
            row("kbert-student", "cnn-student-multichannel", "bucketed", batch=8)]
    records = workers.measure_rows(rows, arrays, max_len=128, min_seconds=0.0, progress=False)
    assert [r["skipped"] for r in records] == [None] * 4
    for r, asked in zip(records, rows):
        assert RECORD_KEYS <= set(r)
        assert {k: r[k] for k in asked} == asked
        assert r["items_per_second"] > 0 and r["sentences"] == 8 and r["passes"] >= 1
        per_sentence = r["gflops_per_second"] / r["items_per_second"]
        assert per_sentence == pytest.approx(r["gflops_per_sentence"])
    padded, bucketed, student, multichannel = records
    assert padded["seq_len"] == 128 and padded["warmup_shapes"] == 1
    assert bucketed["seq_len"] < 128 and bucketed["max_width"] % 8 == 0
    assert padded["gflops_per_sentence"] * 1e9 == pytest.approx(flops.flops_per_sentence("tiny", 128))
    assert student["gflops_per_sentence"] * 1e9 == pytest.approx(
        flops.flops_per_sentence("cnn-student", student["max_width"])  # one batch of 8: one width
    )
    assert multichannel["gflops_per_sentence"] == pytest.approx(2 * student["gflops_per_sentence"], rel=1e-3)
    json.dumps(records)  # plain JSON types only


def test_a_row_for_another_backend_is_skipped_not_run(rng):
    other = next(b for b in cli.BACKENDS if b != BACKEND)
    [record] = workers.measure_rows([row("kbert", "tiny", "padded", backend=other)], sentences(rng),
                                    min_seconds=0.0, progress=False)
    assert record["items_per_second"] is None and BACKEND in record["skipped"]


def test_a_missing_peer_is_reported_as_skipped(monkeypatch, tmp_path):
    monkeypatch.setitem(workers.REQUIREMENTS, "transformers", ("torch", "no_such_module_for_kbert_tests"))
    monkeypatch.setattr(workers, "run_worker", lambda *a: pytest.fail("no worker for a missing peer"))
    rows = [row("transformers", "tiny", "padded", backend="torch")]
    [record] = workers.run_benchmark(rows, str(tmp_path / "unused.npz"), max_len=128, min_seconds=0.0)
    assert record["skipped"] == "not installed: no_such_module_for_kbert_tests"
    assert record["items_per_second"] is None and record["gflops_per_second"] is None
    report.add_peak([record], 100.0)
    assert "skipped: not installed: no_such_module_for_kbert_tests" in report.format_report([record])


def test_ratios_and_atomic_json(tmp_path):
    def measured(impl, model, mode, rate, variant="default", backend="jax"):
        return workers.blank_record(row(impl, model, mode, batch=32, backend=backend, variant=variant),
                                    seq_len=128.0, items_per_second=rate, gflops_per_second=1.0)

    # minilm-l6 first: students still meet their teachers in the targets' order.
    records = [measured("kbert", "minilm-l6", "bucketed", 100.0),
               measured("kbert", "bert-base", "padded", 2.0), measured("kbert", "bert-base", "bucketed", 8.0),
               measured("kbert", "bert-base", "padded", 3.0, "int8"),
               measured("kbert", "bert-base", "bucketed", 12.0, "int8"),
               measured("kbert-student", "cnn-student", "bucketed", 1000.0),
               # The transformer student meets only the teacher it is cut from.
               measured("kbert", "minilm-l3-student", "bucketed", 210.0),
               # A variant, and a peer measuring the same shape, are no students.
               measured("kbert", "minilm-l3-student", "bucketed", 300.0, "int8"),
               measured("transformers", "minilm-l3-student", "bucketed", 50.0),
               measured("transformers", "bert-base", "padded", 1.0, backend="torch"),
               measured("keras-hub", "bert-base", "padded", 4.0, backend="torch")]  # another backend: no pair
    report.add_peak(records, 10.0)
    assert dict(report.ratios(records)) == {
        "kbert / peers": ["kbert[jax] / transformers[torch]  bert-base b32 padded: 2.00x",
                          "kbert[jax] / transformers[jax]  minilm-l3-student b32 bucketed: 4.20x"],
        "bucketed / padded": ["kbert[jax] bert-base b32: bucketed/padded 4.00x",
                              "kbert[jax] bert-base int8 b32: bucketed/padded 4.00x"],
        "variant / default (speed only; int8 accuracy is checked elsewhere)": [
            "kbert[jax] bert-base b32 padded: int8/default 1.50x",
            "kbert[jax] bert-base b32 bucketed: int8/default 1.50x",
            "kbert[jax] minilm-l3-student b32 bucketed: int8/default 1.43x"],
        "student / teacher": ["cnn-student/bert-base [jax] b32 bucketed: 125.0x (target >= 100x: met)",
                              "cnn-student/minilm-l6 [jax] b32 bucketed: 10.0x (target >= 15x: NOT met)",
                              "minilm-l3-student/minilm-l6 [jax] b32 bucketed: 2.1x (target >= 2.5x: NOT met)"],
    }
    assert "\nkbert / peers:\n  kbert[jax] / transformers[torch]" in report.format_report(records)
    path = tmp_path / "out" / "records.json"
    workers.write_records(path, records)
    assert json.loads(path.read_text()) == records
    assert list(json.loads(path.read_text())[0]) == list(records[0])  # keys in table order, not sorted
    assert [p.name for p in path.parent.iterdir()] == ["records.json"]


def test_unknown_backend_is_a_clear_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["--backends", "jax,theano"])
    assert exit_info.value.code == 2
    assert "unknown backend 'theano': choose from tensorflow, jax, torch" in capsys.readouterr().err


def test_missing_glue_data_says_how_to_get_it(tmp_path, capsys):
    assert cli.main(["--glue-dir", str(tmp_path / "nowhere"), "--quick"]) == 2
    err = capsys.readouterr().err
    assert "kbert download-glue --data-dir" in err and "SST-2" in err


def test_quick_mode_plans_the_required_rows():
    chosen = cli.settings(cli.build_parser().parse_args(["--quick"]))
    rows = workers.plan_rows(chosen["impls"], chosen["backends"], chosen["models"], chosen["batch_sizes"],
                             chosen["modes"], chosen["variants"])
    have = {(r["impl"], r["backend"], r["model"], r["batch"], r["mode"]) for r in rows}
    for needed in [("kbert", "jax", "bert-base", 32, "padded"), ("transformers", "torch", "bert-base", 32, "padded"),
                   ("kbert", "jax", "bert-base", 32, "bucketed"), ("kbert", "jax", "minilm-l6", 32, "bucketed"),
                   ("kbert", "jax", "minilm-l6", 32, "padded"), ("kbert", "jax", "minilm-l3-student", 32, "bucketed"),
                   ("kbert-student", "jax", "cnn-student", 32, "bucketed")]:
        assert needed in have
    assert chosen["max_sentences"] <= 128


def test_worker_reads_its_spec_and_writes_records(rng, tmp_path):
    # What a subprocess runs, called in this process.
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, **sentences(rng))
    out = tmp_path / "records.json"
    spec = dict(rows=[row("kbert", "tiny", "bucketed", batch=8)], inputs=str(inputs), out=str(out),
                max_len=128, min_seconds=0.0, progress=False)
    write_json(tmp_path / "spec.json", spec)
    assert workers.worker_main(str(tmp_path / "spec.json")) == 0
    [record] = json.loads(out.read_text())["records"]
    assert record["skipped"] is None and record["items_per_second"] > 0 and record["weights"] == "random"


@pytest.mark.slow
@pytest.mark.single_backend
def test_a_worker_subprocess_runs_the_entry_script(rng, tmp_path):
    # The parent's way: `throughput.py --worker` in a subprocess must find
    # the package beside it, whatever directory it starts from.
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, **sentences(rng))
    [record] = workers.run_benchmark([row("kbert", "tiny", "bucketed", batch=8)], str(inputs),
                                     max_len=128, min_seconds=0.0, progress=False)
    assert record["skipped"] is None and record["items_per_second"] > 0 and record["backend"] == BACKEND
