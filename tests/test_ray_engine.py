"""`kbert predict --engine ray`: Ray Data's actors write the local
engine's shards, a worker killed in the middle of a shard is restarted and
the job completes, and either engine resumes the other's job.  (Apart from
test_predict_files.py so that the suite's two workers can run this slow
test beside that file.)"""

import os

import numpy as np
import pytest
from test_predict import make_run
from test_predict_files import read_shards, write_inputs

from kbert.options import PredictOptions
from kbert.predict import predict_files


def _die_once_before_a_record():
    """A Ray worker's start-up hook: the first worker to claim the marker
    file $DIE_ONCE dies (os._exit, as a kill) after writing a shard's
    predictions and before its record."""
    import kbert.predict

    marker = os.environ["DIE_ONCE"]
    real = kbert.predict.write_json

    def write_json(path, value):
        if os.path.basename(path).startswith("part-"):
            try:
                os.rename(marker, marker + ".claimed")
            except FileNotFoundError:
                pass
            else:
                os._exit(1)
        real(path, value)

    kbert.predict.write_json = write_json


@pytest.mark.single_backend  # Ray's workers run the caller's backend; one is enough
def test_ray_engine_writes_the_local_engines_shards_and_survives_a_killed_worker(tmp_path):
    ray = pytest.importorskip("ray")
    from ray import cloudpickle

    sst2_run = make_run(tmp_path / "sst2", "SST-2", 2, ("0", "1"))
    paths, texts = write_inputs(tmp_path)
    local = tmp_path / "local"
    predict_files(sst2_run, paths, local, PredictOptions(shard_rows=3), verbose=False)
    marker = str(tmp_path / "die-once")
    open(marker, "w").close()
    import test_ray_engine

    cloudpickle.register_pickle_by_value(test_ray_engine)  # the workers cannot import the tests
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"KERAS_BACKEND": __import__("keras").backend.backend(), "DIE_ONCE": marker},
                          "worker_process_setup_hook": _die_once_before_a_record})
    try:
        output = tmp_path / "ray"
        manifest = predict_files(sst2_run, paths, output, PredictOptions(shard_rows=3, engine="ray", workers=2),
                                 verbose=False)
    finally:
        ray.shutdown()
    assert os.path.exists(marker + ".claimed")  # a worker did die, and the job completed
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
