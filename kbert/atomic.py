"""Atomic file writes: write beside the target, then `os.replace` onto it.

A reader (or a run killed halfway) then sees either the old file or the
complete new one, never a torn file that a later run would trust.
Directories (an exported checkpoint or serving artifact) are written beside
their target and swapped in by `replace_dir`.  The one JSON reader lives
here too, beside the one JSON writer, and the file hash
that tells whether a file is still the one that was written.
"""

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile

import numpy as np

logger = logging.getLogger(__name__)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; a finished file gets
# the permissions an ordinary open() would have given it.
_FILE_MODE = 0o666 & ~_current_umask()


@contextlib.contextmanager
def atomic_output(path, suffix=".tmp"):
    """Yield a temporary path beside `path`; replace `path` with it on success.

    `suffix` keeps an extension that a writer insists on (`.keras`, `.h5`).
    The temporary file is removed if the block raises.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    for stale in stale_temporaries(path):
        remove_quietly(stale)
    # The pid in the name tells a later writer whether this one is still alive.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.{os.getpid()}.", suffix=suffix)
    os.close(fd)
    try:
        os.chmod(tmp, _FILE_MODE)
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise


def stale_temporaries(path):
    """Temporary siblings of `path` (`.NAME.PID.*`) left by writers that died.

    A killed process cannot clean up after itself; the next writer of the
    same file does.  A temporary of a live process is left alone; one
    without a pid in its name predates this scheme and is stale.
    """
    path = os.path.abspath(os.fspath(path))
    directory, prefix = os.path.dirname(path), f".{os.path.basename(path)}."
    if not os.path.isdir(directory):
        return []
    stale = []
    for name in os.listdir(directory):
        if not name.startswith(prefix) or name.startswith(prefix + "old"):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and _alive(int(pid)):
            continue
        stale.append(os.path.join(directory, name))
    return stale


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def write_text_atomic(path, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_json(path, value) -> None:
    """Write JSON atomically (sorted keys, indented, numpy scalars allowed)."""
    write_text_atomic(path, json.dumps(value, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path, *, error, what, missing=None) -> dict:
    """The JSON object in `path`, or `error` (a KbertError class) naming the file.

    `what` names the file's role in messages ("config", "manifest");
    `missing` replaces "no such file" when absence itself means something
    ("not a kbert run directory").
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except FileNotFoundError:
        raise error(f"{path}: {missing or 'no such file'}") from None
    # UnicodeDecodeError and JSONDecodeError are both ValueErrors.
    except (OSError, ValueError) as e:
        raise error(f"{path}: unreadable {what}: {e}") from None
    except RecursionError:
        raise error(f"{path}: unreadable {what}: nested too deeply for a JSON reader") from None
    if not isinstance(value, dict):
        raise error(f"{path}: {what} is not a JSON object")
    return value


def save_model_atomic(model, path) -> None:
    """`model.save` (a `.keras` file) without ever leaving a torn file at `path`."""
    with atomic_output(path, suffix=".keras") as tmp:
        model.save(tmp)


def remove_quietly(path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def file_sha256(path, chunk_size: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _aside(target):
    """Where an existing target waits while its replacement is renamed in."""
    return os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.old")


def replace_dir(new, target):
    """Rename `new` to `target`; an existing target is moved aside first and
    removed only once the new one is in place.  If the second rename fails,
    the old target is put back; if the process dies between the renames,
    the next writer (`recover_dir`) puts it back."""
    old = None
    if os.path.exists(target):
        old = _aside(target)
        shutil.rmtree(old, ignore_errors=True)  # a leftover of an export that finished its swap
        os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        if old:
            os.rename(old, target)
        raise
    if old:
        shutil.rmtree(old, ignore_errors=True)


def recover_dir(target):
    """Undo what a writer killed between `replace_dir`'s two renames left:
    the old directory aside and no target.  Temporary directories of killed
    writers (`.NAME.PID.*` beside the target) are removed."""
    old = _aside(target)
    if os.path.isdir(old) and not os.path.exists(target):
        logger.warning("%s: an earlier write was interrupted; the previous directory is put back", target)
        os.rename(old, target)
    for stale in stale_temporaries(target):
        shutil.rmtree(stale, ignore_errors=True)
