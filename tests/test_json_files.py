"""Every JSON file kbert reads fails the same way: the KbertError subclass of
its role, naming the file, whether it is missing, torn, not UTF-8, or valid
JSON of the wrong shape (a list where an object belongs)."""

import pytest

from kbert import BertConfig, ConfigError, DataError
from kbert.glue.features import read_meta
from kbert.materials import load_materials
from kbert.runs import read_run

pytestmark = pytest.mark.keras_free

READERS = [
    # (file name, reader of its directory, error, words of the missing-file message)
    ("bert_config.json", lambda d: BertConfig.from_json_file(d / "bert_config.json"), ConfigError,
     "config file not found"),
    ("run.json", read_run, ConfigError, "not a kbert run directory"),
    ("meta.json", lambda d: read_meta(d / "meta.json"), DataError, "no such file"),
    ("manifest.json", load_materials, DataError, "not a materials directory"),
]


@pytest.mark.parametrize("name, read, error, missing", READERS, ids=[r[0] for r in READERS])
@pytest.mark.parametrize("content, message", [
    (None, None),
    (b'{"torn": ', "unreadable"),
    (b"\xff\xfe{}", "unreadable"),
    (b"[1, 2]", "is not a JSON object"),
], ids=["missing", "torn", "not-utf8", "list"])
def test_broken_json_names_the_file(tmp_path, name, read, error, missing, content, message):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(error, match=message or missing) as info:
        read(tmp_path)
    assert name in str(info.value)
