"""`--engine ray`: Ray Data's actors write the local engine's prediction
shards (`kbert predict`) and compute the local engine's teacher logits
(`kbert materials`); a worker killed in the middle of its work is
restarted and the job completes; either engine resumes the other's job.
(Apart from the other predict and materials tests so that the suite's two
workers can run these slow tests beside them; one Ray instance serves both.)"""

import os
import re

import keras
import numpy as np
import pytest
from test_materials import VOCAB as MATERIALS_VOCAB
from test_materials import make_split, make_teacher
from test_predict import make_run
from test_predict_files import read_shards, write_inputs

from kbert import materials as materials_module
from kbert import runs
from kbert.materials import MaterialsOptions, generate_materials, load_materials, teacher_sha256
from kbert.options import PredictOptions
from kbert.predict import predict_files

pytestmark = pytest.mark.single_backend  # Ray's workers run the caller's backend; one is enough


def _die_once_in_each_job():
    """A Ray worker's start-up hook: the first worker to claim a marker file
    in $DIE_ONCE dies (os._exit, as a kill): "predict" after writing a
    shard's predictions and before its record, "materials" after computing a
    chunk's logits and before returning them."""
    import kbert.materials
    import kbert.predict

    def dies_once(job):
        marker = os.path.join(os.environ["DIE_ONCE"], job)
        try:
            os.rename(marker, marker + ".claimed")
        except FileNotFoundError:
            return
        os._exit(1)

    write_json, teacher_logits = kbert.predict.write_json, kbert.materials._teacher_logits

    def predict_write_json(path, value):
        if os.path.basename(path).startswith("part-"):
            dies_once("predict")
        write_json(path, value)

    def materials_teacher_logits(*args, **kwargs):
        logits = teacher_logits(*args, **kwargs)
        dies_once("materials")
        return logits

    kbert.predict.write_json = predict_write_json
    kbert.materials._teacher_logits = materials_teacher_logits


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    """Ray on this machine, its workers dying once per marker file put in
    the yielded directory."""
    ray = pytest.importorskip("ray")
    import test_ray_engine
    from ray import cloudpickle

    markers = tmp_path_factory.mktemp("die-once")
    cloudpickle.register_pickle_by_value(test_ray_engine)  # the workers cannot import the tests
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"KERAS_BACKEND": keras.backend.backend(), "DIE_ONCE": str(markers)},
                          "worker_process_setup_hook": _die_once_in_each_job})
    try:
        yield markers
    finally:
        ray.shutdown()


def test_ray_engine_writes_the_local_engines_shards_and_survives_a_killed_worker(ray_instance, tmp_path):
    sst2_run = make_run(tmp_path / "sst2", "SST-2", 2, ("0", "1"))
    paths, texts = write_inputs(tmp_path)
    local = tmp_path / "local"
    predict_files(sst2_run, paths, local, PredictOptions(shard_rows=3), verbose=False)
    marker = ray_instance / "predict"
    marker.touch()
    output = tmp_path / "ray"
    manifest = predict_files(sst2_run, paths, output, PredictOptions(shard_rows=3, engine="ray", workers=2),
                             verbose=False)
    assert not marker.exists() and (ray_instance / "predict.claimed").exists()  # a worker died; the job completed
    assert manifest["status"] == "complete" and [s["name"] for s in manifest["shards"]] == [
        f"part-{k:05d}" for k in range(6)]
    _, rows = read_shards(output)
    assert [row["text"] for row in rows] == texts
    _, expected = read_shards(local)
    np.testing.assert_allclose([row["logits"] for row in rows], [row["logits"] for row in expected], atol=1e-6)
    assert sorted(os.listdir(output)) == sorted(os.listdir(local))
    # Either engine resumes the other's job: the local one finds every shard written.
    again = predict_files(sst2_run, paths, output, PredictOptions(shard_rows=3), verbose=False)
    assert again["resumed_rows"] == 14


def teacher_run(directory, seed):
    model = make_teacher(seed)
    directory.mkdir()
    runs.save_model(directory, model, "teacher")
    runs.write_vocab(directory, MATERIALS_VOCAB)
    runs.write_run(directory, runs.RunRecord(kind="teacher", status="complete", options={}, task="SST-2",
                                             labels=("0", "1"), num_labels=2, max_seq_len=10))
    model, _ = runs.load_model(directory)  # as the actors will: the same weights, hashed alike
    return directory, model


def generate(teachers, splits, unlabeled, out_dir, **options):
    (first, model), ensemble = teachers[0], [(m, str(d)) for d, m in teachers[1:]]
    options = MaterialsOptions(task="SST-2", max_seq_len=10, batch_size=8, **options)
    return generate_materials(
        model, splits, str(out_dir), vocab=MATERIALS_VOCAB, teacher_id=str(first), options=options, verbose=False,
        ensemble=ensemble, unlabeled=list(unlabeled),
        teacher_runs=[d for d, _ in teachers] if options.engine == "ray" else None)


def killed_after_two_chunks(monkeypatch, teachers, splits, out, **options):
    """Run a pass that dies once two chunks are saved; the chunks saved."""
    real_save, saved = materials_module._Parts.save, []

    def dies_after_two_chunks(parts, teacher, chunk, logits):
        if len(saved) == 2:
            raise KeyboardInterrupt
        saved.append(chunk)
        real_save(parts, teacher, chunk, logits)

    monkeypatch.setattr(materials_module._Parts, "save", dies_after_two_chunks)
    with pytest.raises(KeyboardInterrupt):
        generate(teachers, splits, [], out, **options)
    monkeypatch.setattr(materials_module._Parts, "save", real_save)
    assert len(os.listdir(out / "train.parts")) == 3  # the key and two chunks
    return saved


def test_ray_engine_computes_the_local_engines_materials_and_either_resumes_the_other(
        ray_instance, tmp_path, monkeypatch):
    """An ensemble of two teachers over two labelled splits and three
    unlabeled shards, in chunks of 16 rows (train: 16, 16, 8 a teacher).
    A local pass killed after two chunks resumes on Ray, whose actors (one
    killed once) give the local engine's logits; a Ray pass killed after
    two chunks resumes locally."""
    monkeypatch.setattr(materials_module, "CHUNK_ROWS", 16)
    teachers = [teacher_run(tmp_path / "a", 0), teacher_run(tmp_path / "b", 1)]
    rng = np.random.default_rng(3)
    splits = {"train": make_split(rng, 40), "dev": make_split(rng, 12)}
    # 36 rows: one Ray job (RAY_ROWS_PER_ACTOR).
    unlabeled = [(f"unlabeled-{k:05d}", make_split(rng, 12, labeled=False), {"lines": [1, 12]}) for k in range(3)]
    local = generate(teachers, splits, unlabeled, tmp_path / "local")
    expected = load_materials(str(tmp_path / "local"))

    def resumed(manifest, saved):
        """Whether train's record counts the saved chunks as resumed: of its
        80 teacher-rows, those not saved, computed now, per teacher."""
        entry = manifest["splits"]["train"]
        fresh = (80 - sum(16 if chunk < 2 else 8 for chunk in saved)) // 2
        return entry["resumed_rows"] == 40 - fresh and entry["count"] == 40

    saved = killed_after_two_chunks(monkeypatch, teachers, {"train": splits["train"]}, tmp_path / "ray")
    marker = ray_instance / "materials"
    marker.touch()
    on_ray = generate(teachers, splits, unlabeled, tmp_path / "ray", engine="ray", workers=2)
    assert not marker.exists() and (ray_instance / "materials.claimed").exists()  # a worker died; the job completed
    assert resumed(on_ray, saved) and not (tmp_path / "ray" / "train.parts").exists()
    assert list(on_ray["splits"]) == list(local["splits"]) == ["train", "dev"] + [name for name, *_ in unlabeled]
    assert all(entry["engine"] == "ray" and entry["complete"] for entry in on_ray["splits"].values())
    got = load_materials(str(tmp_path / "ray"))
    for name in ("train", "dev", "unlabeled"):
        np.testing.assert_allclose(got.split(name).y, expected.split(name).y, atol=1e-6)
        np.testing.assert_array_equal(got.split(name).x, expected.split(name).x)
    # And they are the mean of the two teachers' logits.
    direct = np.mean([keras.ops.convert_to_numpy(m.predict_on_batch([splits["train"].token_ids,
                                                                     splits["train"].segment_ids]))
                      for _, m in teachers], axis=0)
    np.testing.assert_allclose(got.split("train").y, direct, atol=1e-5)

    # A Ray pass killed after two chunks (any two) resumes locally.
    saved = killed_after_two_chunks(monkeypatch, teachers, {"train": splits["train"]}, tmp_path / "then-local",
                                    engine="ray", workers=2)
    manifest = generate(teachers, {"train": splits["train"]}, [], tmp_path / "then-local")
    assert resumed(manifest, saved) and "engine" not in manifest["splits"]["train"]
    np.testing.assert_allclose(load_materials(str(tmp_path / "then-local")).split("train").y,
                               expected.split("train").y, atol=1e-6)


def test_a_ray_worker_refuses_weights_other_than_the_callers(ray_instance, tmp_path):
    """The actors load the teacher runs themselves: a run whose weights are
    not those the call hashed is refused by name, as a DataError."""
    from kbert.errors import DataError

    (directory, model), (_, other) = teacher_run(tmp_path / "a", 0), teacher_run(tmp_path / "b", 1)
    assert teacher_sha256(model) != teacher_sha256(other)
    options = MaterialsOptions(task="SST-2", max_seq_len=10, batch_size=8, engine="ray", workers=1)
    with pytest.raises(DataError, match=re.escape(f"{directory}: the teacher's weights changed")):
        generate_materials(other, {"dev": make_split(np.random.default_rng(0), 4)}, str(tmp_path / "m"),
                           vocab=MATERIALS_VOCAB, teacher_id="other", options=options, verbose=False,
                           teacher_runs=[directory])
