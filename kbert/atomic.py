"""Atomic file writes: write beside the target, then `os.replace` onto it.

A reader (or a run killed halfway) then sees either the old file or the
complete new one, never a torn file that a later run would trust.
Directories (an exported checkpoint or serving artifact) are written beside
their target and swapped in by `replace_dir` (`atomic_directory`), which
refuses a destination that is, contains or lies inside an input, and
replaces only a directory kbert wrote.  The one JSON reader lives
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


def _resolved(path):
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def refuse_overlap(destination, inputs, *, flag, error):
    """Refuse a `destination` that is, contains or lies inside one of
    `inputs` (paths, resolved: `..`, symlinks and symlink loops followed as
    far as they go), so that writing or replacing it can never remove or
    change what it reads.  `flag` names the destination in the message
    ("--output"); `error` is the KbertError class to raise."""
    target = _resolved(destination)
    for source in inputs:
        if source is None:
            continue
        where = _resolved(source)
        if target == where:
            raise error(f"{flag} {destination}: is the input {source} itself; write somewhere else")
        if os.path.commonpath([target, where]) == target:
            raise error(f"{flag} {destination}: contains the input {source}, which writing it would "
                        f"remove; write somewhere else")
        if os.path.commonpath([target, where]) == where:
            raise error(f"{flag} {destination}: lies inside the input {source}; write somewhere else")


@contextlib.contextmanager
def atomic_directory(target, *, overwrite, marker, inputs=(), flag, error):
    """Yield a temporary directory beside `target` to fill; on success it
    replaces `target` (`replace_dir`); on any failure it is removed and
    `target` is as it was.

    Refused with `error` (a KbertError class) naming `flag` and the path: a
    target that is, contains or lies inside one of `inputs`
    (`refuse_overlap`); an existing target without `overwrite`; an existing
    target that kbert did not write (not a directory holding `marker`, the
    file every such directory of kbert's holds), which it never removes;
    and a place where no directory can be made (an OSError's reason).
    """
    refuse_overlap(target, inputs, flag=flag, error=error)
    target = os.path.abspath(os.fspath(target))
    with os_errors(target, flag, error):
        recover_dir(target)
    if os.path.lexists(target):
        if not overwrite:
            raise error(f"{flag} {target}: already exists (pass --overwrite, or overwrite=True, to replace it)")
        if not os.path.isdir(target) or os.path.islink(target) or not os.path.isfile(os.path.join(target, marker)):
            raise error(f"{flag} {target}: exists and is not a directory kbert wrote (no {marker} in it); "
                        f"kbert replaces only its own output, so remove it yourself or write somewhere else")
    parent = os.path.dirname(target)
    with os_errors(target, flag, error):
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.{os.getpid()}.", dir=parent)
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; what is written here is not
        yield tmp
        with os_errors(target, flag, error):
            replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def os_errors(target, flag, error):
    """An OSError of the file system (no permission, a parent that is a file,
    a read-only or full disk) as `error`, naming the destination."""
    try:
        yield
    except OSError as e:
        raise error(f"{flag} {target}: cannot write there: {e.strerror or e}") from None


def _aside(target):
    """Where an existing target waits while its replacement is renamed in."""
    return os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.old")


def replace_dir(new, target):
    """Rename `new` to `target`; an existing target is moved aside first and
    removed only once the new one is in place.  If the second rename fails,
    the old target is put back; if the process dies between the renames,
    the next writer (`recover_dir`) puts it back."""
    old = None
    if os.path.lexists(target):
        old = _aside(target)
        _remove_tree(old)  # a leftover of an export that finished its swap
        os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        if old:
            os.rename(old, target)
        raise
    if old:
        _remove_tree(old)


def _remove_tree(path):
    """Remove what `replace_dir` set aside: a directory, or a file or link
    (which `shutil.rmtree` would leave, silently, to block the next swap)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        remove_quietly(path)


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
