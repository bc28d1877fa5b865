"""Download GLUE tasks into the layout of `download_glue_data.py`.

Each task ends up as `DATA_DIR/TASK/{train,dev,test}.tsv`.  Most tasks are
a zip on GLUE's public host; MRPC is not (its licence keeps it off that
host), so, as the original script does, it is built from the MSR
paraphrase corpus files mirrored for SentEval plus GLUE's list of the
pairs that form the dev split:

- train.tsv: the corpus training pairs not in the dev list,
- dev.tsv: the corpus training pairs in the dev list,
- test.tsv: the corpus test pairs, with an `index` column in place of the
  quality label.

Every download is checked (HTTP status, the zip opens and holds the task's
three files, optionally a known sha256) and a task is assembled in a
temporary directory beside its target, then renamed into place, so an
interrupted download never leaves a half task that a later run would
skip.  A task whose three files are already present is skipped.

All URLs come from a mapping (`DEFAULT_URLS`), and `base_url` replaces the
host part of every default, so tests and mirrors can serve the files from
elsewhere.
"""

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from typing import Iterable, Mapping, Optional

from kbert.errors import DataError
from kbert.glue.processors import SPLITS, canonical_task_name

logger = logging.getLogger(__name__)

_GLUE_HOST = "https://dl.fbaipublicfiles.com/glue/data"
_SENTEVAL_HOST = "https://dl.fbaipublicfiles.com/senteval/senteval_data"

# Keys: the task names of kbert.glue, plus the three MRPC sources.
DEFAULT_URLS = {
    "CoLA": f"{_GLUE_HOST}/CoLA.zip",
    "SST-2": f"{_GLUE_HOST}/SST-2.zip",
    "STS-B": f"{_GLUE_HOST}/STS-B.zip",
    "RTE": f"{_GLUE_HOST}/RTE.zip",
    "WNLI": f"{_GLUE_HOST}/WNLI.zip",
    "MRPC-train": f"{_SENTEVAL_HOST}/msr_paraphrase_train.txt",
    "MRPC-test": f"{_SENTEVAL_HOST}/msr_paraphrase_test.txt",
    "MRPC-dev-ids": f"{_GLUE_HOST}/mrpc_dev_ids.tsv",
}
MRPC_SOURCES = ("MRPC-train", "MRPC-test", "MRPC-dev-ids")
DOWNLOADABLE_TASKS = ("CoLA", "SST-2", "MRPC", "STS-B", "RTE", "WNLI")

_TIMEOUT_S = 60
_CHUNK = 1 << 20


class DownloadError(DataError):
    """A download failed or delivered something that is not the task's data."""


def resolve_urls(urls: Optional[Mapping[str, str]] = None, base_url: Optional[str] = None) -> dict:
    """The URL of every source: defaults, re-hosted on `base_url`, then `urls`.

    With `base_url`, a source's URL is `base_url/<file name of its default>`,
    e.g. `http://127.0.0.1:8000/CoLA.zip`.
    """
    resolved = dict(DEFAULT_URLS)
    if base_url:
        base = base_url.rstrip("/")
        resolved = {key: f"{base}/{url.rsplit('/', 1)[-1]}" for key, url in resolved.items()}
    resolved.update(urls or {})
    return resolved


def task_present(data_dir, task: str) -> bool:
    task_dir = os.path.join(os.fspath(data_dir), task)
    return all(os.path.isfile(os.path.join(task_dir, f"{split}.tsv")) for split in SPLITS)


def download_glue(
    tasks: Iterable[str],
    data_dir,
    urls: Optional[Mapping[str, str]] = None,
    base_url: Optional[str] = None,
    sha256: Optional[Mapping[str, str]] = None,
) -> dict:
    """Download `tasks` into `data_dir`; returns {task: "downloaded" | "present"}.

    Args:
        tasks: task names, any spelling `get_processor` accepts.
        data_dir: the GLUE directory, created if needed.
        urls: overrides of `DEFAULT_URLS` entries.
        base_url: re-host every default URL (see `resolve_urls`).
        sha256: expected sha256 hex digests by source key, checked when given.
    """
    names = [canonical_task_name(task) for task in tasks]
    resolved = resolve_urls(urls, base_url)
    data_dir = os.fspath(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    outcome = {}
    for task in dict.fromkeys(names):  # de-duplicated, order kept
        if task_present(data_dir, task):
            logger.info("%s: already in %s, skipped", task, data_dir)
            outcome[task] = "present"
            continue
        logger.info("%s: downloading", task)
        with _staging_dir(data_dir, task) as staging:
            if task == "MRPC":
                _build_mrpc(staging, resolved, sha256 or {})
            else:
                _unpack_task_zip(staging, task, resolved[task], (sha256 or {}).get(task))
            _check_task_dir(os.path.join(staging, task), task)
            _move_into_place(os.path.join(staging, task), os.path.join(data_dir, task))
        outcome[task] = "downloaded"
    return outcome


# -- fetching -------------------------------------------------------------


def fetch(url: str, destination: str, expected_sha256: Optional[str] = None) -> str:
    """Download `url` to `destination`; returns the file's sha256."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response, open(destination, "wb") as out:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"downloading {url} failed: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"downloading {url} failed: {reason}") from e
    actual = digest.hexdigest()
    if expected_sha256 and actual != expected_sha256.lower():
        raise DownloadError(f"{url}: sha256 is {actual}, expected {expected_sha256}")
    return actual


@contextlib.contextmanager
def _staging_dir(data_dir: str, task: str):
    """A temporary directory beside the target, removed on exit whatever happens."""
    path = tempfile.mkdtemp(dir=data_dir, prefix=f".{task}.download-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _move_into_place(source: str, target: str) -> None:
    # A partial directory from an older, non-atomic tool would block the
    # rename; it is incomplete by definition (task_present was false).
    if os.path.isdir(target):
        logger.warning("%s: incomplete task directory replaced", target)
        shutil.rmtree(target)
    os.rename(source, target)


def _check_task_dir(task_dir: str, task: str) -> None:
    missing = [f"{split}.tsv" for split in SPLITS if not os.path.isfile(os.path.join(task_dir, f"{split}.tsv"))]
    if missing:
        raise DownloadError(f"{task}: the download lacks {', '.join(missing)}")


# -- zipped tasks ---------------------------------------------------------


def _unpack_task_zip(staging: str, task: str, url: str, expected_sha256: Optional[str]) -> None:
    archive = os.path.join(staging, f"{task}.zip")
    fetch(url, archive, expected_sha256)
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            _check_members(names, url)
            wanted = {f"{task}/{split}.tsv" for split in SPLITS}
            missing = sorted(wanted - set(names))
            if missing:
                raise DownloadError(f"{url}: the zip lacks {', '.join(missing)}")
            bad = zf.testzip()
            if bad is not None:
                raise DownloadError(f"{url}: corrupt zip member {bad}")
            zf.extractall(staging)
    except zipfile.BadZipFile as e:
        raise DownloadError(f"{url}: not a zip file ({e})") from e
    finally:
        os.remove(archive)


def _check_members(names, url: str) -> None:
    # extractall already neutralises such names; refusing them says loudly
    # that the archive is not GLUE's.
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            raise DownloadError(f"{url}: zip member {name!r} points outside its directory")


# -- MRPC -----------------------------------------------------------------


def _build_mrpc(staging: str, urls: Mapping[str, str], sha256: Mapping[str, str]) -> None:
    files = {}
    for key in MRPC_SOURCES:
        files[key] = os.path.join(staging, urls[key].rsplit("/", 1)[-1] or key)
        fetch(urls[key], files[key], sha256.get(key))
    dev_ids = _read_dev_ids(files["MRPC-dev-ids"])
    task_dir = os.path.join(staging, "MRPC")
    os.makedirs(task_dir)
    header, rows = _read_msr(files["MRPC-train"])
    found = _split_train_dev(header, rows, dev_ids, task_dir)
    if found != len(dev_ids):
        logger.warning("MRPC: %d of %d dev pairs found in the training corpus", found, len(dev_ids))
    _, test_rows = _read_msr(files["MRPC-test"])
    with open(os.path.join(task_dir, "test.tsv"), "w", encoding="utf-8", newline="\n") as out:
        out.write("index\t#1 ID\t#2 ID\t#1 String\t#2 String\n")
        for index, (_, id1, id2, s1, s2) in enumerate(test_rows):
            out.write(f"{index}\t{id1}\t{id2}\t{s1}\t{s2}\n")


def _read_dev_ids(path: str) -> set:
    pairs = set()
    with open(path, encoding="utf-8-sig") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            fields = line.strip().split("\t")
            if len(fields) != 2:
                raise DownloadError(f"{path}:{line_no}: expected two tab-separated ids")
            pairs.add(tuple(fields))
    return pairs


def _read_msr(path: str):
    """Header line (BOM kept, as in GLUE's files) and the 5-column rows."""
    try:
        return _read_msr_lines(path)
    except UnicodeDecodeError as e:
        raise DownloadError(f"{path}: not UTF-8 text ({e.reason})") from e


def _read_msr_lines(path: str):
    rows = []
    with open(path, encoding="utf-8", newline="") as handle:
        header = handle.readline().rstrip("\r\n")
        for line_no, line in enumerate(handle, 2):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 5:
                raise DownloadError(f"{path}:{line_no}: expected 5 tab-separated columns, found {len(fields)}")
            rows.append([field.strip() for field in fields])
    return header, rows


def _split_train_dev(header: str, rows, dev_ids: set, task_dir: str) -> int:
    found = 0
    with open(os.path.join(task_dir, "train.tsv"), "w", encoding="utf-8", newline="\n") as train, open(
        os.path.join(task_dir, "dev.tsv"), "w", encoding="utf-8", newline="\n"
    ) as dev:
        train.write(header + "\n")
        dev.write(header + "\n")
        for row in rows:
            in_dev = (row[1], row[2]) in dev_ids
            found += in_dev
            (dev if in_dev else train).write("\t".join(row) + "\n")
    return found
