"""Run keras_bert_reference.py (keras-bert on tf-keras, in a subprocess) once
per distinct question, whichever backend's pass of the suite asks first.

keras-bert's answers do not depend on the Keras backend under test, and its
subprocess costs tens of seconds, so its output files are kept in a cache
directory ($KBERT_TEST_CACHE, else one under the system's temporary
directory) under a key made of everything that decides them: the bytes of
the reference scripts and of every input file, the non-path arguments, and
the installed versions of keras-bert, tf-keras and TensorFlow.  A changed
input is a new key, never a stale answer.  Each pass still compares its own
backend's numbers with them.
"""

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = ("keras_bert_reference.py", "keras_bert_shared.py")


def _cache_root():
    return os.environ.get("KBERT_TEST_CACHE") or os.path.join(tempfile.gettempdir(),
                                                               f"kbert-test-cache-{os.getuid()}")


def _files(path):
    if os.path.isdir(path):
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                yield os.path.join(root, name)
    else:
        yield path


def _key(inputs, words):
    digest = hashlib.sha256()
    for package in ("keras-bert", "tf-keras", "tensorflow"):
        digest.update(f"{package}={importlib.metadata.version(package)}\n".encode())
    for path in [os.path.join(HERE, s) for s in SCRIPTS] + [os.fspath(p) for p in inputs]:
        for name in _files(path):
            digest.update(os.path.relpath(name, path).encode() + b"\0")
            with open(name, "rb") as f:
                digest.update(hashlib.sha256(f.read()).digest())
    for word in words:
        digest.update(str(word).encode() + b"\0")
    return digest.hexdigest()


def run_reference(args, *, inputs, words, out_dir, outputs):
    """Make `outputs` (file names) appear in `out_dir` as
    `python keras_bert_reference.py *args` writes them there.

    `inputs`: the files and directories the run reads; `words`: the
    arguments that are not paths to them.  Both make the cache key.
    """
    key = _key(inputs, words)
    cached = os.path.join(_cache_root(), key)
    if not all(os.path.isfile(os.path.join(cached, name)) for name in outputs):
        env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
        subprocess.run([sys.executable, os.path.join(HERE, "keras_bert_reference.py"), *map(str, args)],
                       check=True, env=env, capture_output=True, timeout=300)
        os.makedirs(_cache_root(), exist_ok=True)
        tmp = tempfile.mkdtemp(dir=_cache_root(), prefix=f".{key}.")
        for name in outputs:
            shutil.copyfile(os.path.join(out_dir, name), os.path.join(tmp, name))
        try:
            os.rename(tmp, cached)
        except OSError:  # another pass stored it first
            shutil.rmtree(tmp, ignore_errors=True)
        return
    for name in outputs:
        shutil.copyfile(os.path.join(cached, name), os.path.join(out_dir, name))
