"""Large inputs read as streams: the files of `kbert predict --input` and
`kbert materials --unlabeled`, one record at a time in bounded memory.

A file's format comes from its name:

- `.jsonl`, `.ndjson`, `.json`: JSON lines, an object a line: `"text"`
  (a string, or for a pair task the `[first, second]` list that `kbert
  predict` writes) or, for a pair task, `"text_a"` and `"text_b"`; other
  fields are ignored.
- `.parquet`: a `text` column, or for a pair task `text_a` and `text_b`
  (read with pyarrow: `pip install "kbert[parquet]"`).
- compressed files (`.gz`, `.bz2`, `.xz`, `.zst`, `.zip`) are refused:
  decompress them first.
- anything else: text, one input a line, a pair as `first<TAB>second`.

Text is UTF-8 (a leading byte-order mark dropped), lines ending at "\\n",
"\\r\\n" or "\\r", as `kbert predict --file` reads it; JSON lines end at
"\\n" (a "\\r" before it dropped).  Files are read in blocks, so memory
holds a line at a time whatever the file's size; a line over
`MAX_LINE_BYTES` is refused.  A record's place is its line (from 1), or
its row (from 1) in Parquet.  Damage is a `DataError` naming the file and
the place: bytes that are not UTF-8 (or JSON strings that are not
Unicode), a line that is not a JSON object, a missing field, a tab in a
single-sentence input, an empty half of a pair.  A blank record (an empty
line, or every text in it blank) is skipped or refused, as the caller says.
"""

import glob
import json
import os
import re

from kbert.errors import ConfigError, DataError

# Records per Parquet read: bounds memory whatever the file's row groups.
PARQUET_BATCH_ROWS = 8192
# Bytes read at a time, and the longest line taken (a file without line
# breaks would otherwise be held whole).
READ_BYTES = 1 << 20
MAX_LINE_BYTES = 64 << 20
JSON_LINES = (".jsonl", ".ndjson", ".json")
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")


def expand_inputs(patterns, flag):
    """Input files, in the order given, each glob pattern's matches sorted.

    Raises:
        DataError: naming `flag` and the pattern: a missing file, or a
            pattern that matches no file.
    """
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    paths = []
    for pattern in map(os.fspath, patterns):
        if os.path.isfile(pattern):  # a file named like a pattern ("data[1].txt") is that file
            paths.append(pattern)
        elif glob.has_magic(pattern):
            matches = sorted(path for path in glob.glob(pattern) if os.path.isfile(path))
            if not matches:
                raise DataError(f"{flag} {pattern}: no file matches")
            paths += matches
        else:
            raise DataError(f"{flag} {pattern}: {'not a file' if os.path.exists(pattern) else 'no such file'}")
    return paths


def file_format(path):
    """"jsonl", "parquet" or "text", by the file's name."""
    name = os.fspath(path).lower()
    if name.endswith(JSON_LINES):
        return "jsonl"
    return "parquet" if name.endswith(".parquet") else "text"


def read_records(path, *, pairs, blank):
    """(place number, input) of each record of `path`, in file order; an
    input is a string, or a (first, second) tuple when `pairs`.

    Args:
        path: a file (its format by name, see the module docstring).
        pairs: read two sentences a record.
        blank: "skip" (a blank line or empty record is not an input) or
            "error" (it is a DataError: `kbert predict` answers line n
            with output row n).

    Raises:
        DataError: damage, naming the file and its line or row; an
            unreadable file.
        ConfigError: Parquet without pyarrow installed.
    """
    if blank not in ("skip", "error"):
        raise ValueError(f"blank must be 'skip' or 'error', got {blank!r}")
    fmt = file_format(path)
    if os.fspath(path).lower().endswith(COMPRESSED):
        raise DataError(f"{path}: a compressed file; decompress it first (inputs are read as "
                        f"text, JSON lines or Parquet)")
    if fmt == "parquet":
        yield from _parquet_records(path, pairs, blank)
        return
    try:
        with open(path, "rb") as stream:  # bytes, decoded a line at a time: an error names its line
            lines = text_lines(stream, path, universal=fmt == "text")
            if fmt == "jsonl":
                yield from _json_records(lines, path, pairs, blank)
            else:
                yield from text_records(lines, path, pairs=pairs, blank=blank)
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})") from None


def text_lines(stream, where, *, universal=True):
    """(line number from 1, text) of each line of a binary stream, read in
    blocks of `READ_BYTES`: "\\n", "\\r\\n" and, when `universal`, a lone
    "\\r" end a line (open()'s universal newlines); the end of the last
    line is not a line.

    Raises:
        DataError: "WHERE:LINE: not UTF-8 text (reason)", or a line longer
            than `MAX_LINE_BYTES`.
    """
    breaks = re.compile(rb"\r\n|\r|\n" if universal else rb"\n")
    number, pending, start, after_cr = 0, b"", True, False
    while True:
        block = stream.read(READ_BYTES)
        if not block:
            break
        if start:
            while len(block) < 3 and b"\xef\xbb\xbf".startswith(block):  # a mark cut by a short read
                more = stream.read(READ_BYTES)
                if not more:
                    break
                block += more
            block = block.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark is not text
            start = False
        if after_cr and block.startswith(b"\n"):  # the "\n" of a "\r\n" the last block cut
            block = block[1:]
        data = pending + block
        after_cr = universal and data.endswith(b"\r")
        parts = breaks.split(data)
        pending = parts.pop()  # the line still open (b"" after a break)
        for part in parts:
            number += 1
            yield number, _decoded(part, where, number, universal)
        if len(pending) > MAX_LINE_BYTES:
            raise DataError(f"{where}:{number + 1}: a line longer than {MAX_LINE_BYTES} bytes; is this a text file?")
    if pending:
        number += 1
        yield number, _decoded(pending, where, number, universal)


def _decoded(raw, where, number, universal):
    if not universal and raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{where}:{number}: not UTF-8 text ({e.reason})") from None


def text_records(lines, path, *, pairs, blank):
    """(number, input) of each (number, line) of `lines` (`text_lines`),
    read as text records; `path` names their source in errors ("<stdin>")."""
    for number, line in lines:
        if not line.strip():
            if blank == "skip":
                continue
            raise DataError(f"{path}:{number}: blank line")
        fields = line.split("\t")
        if pairs and len(fields) != 2:
            raise DataError(f"{path}:{number}: expected 'first<TAB>second', found {len(fields)} field(s)")
        if not pairs and len(fields) != 1:
            raise DataError(f"{path}:{number}: a tab in a single-sentence input (this task takes no pairs)")
        yield number, _checked(tuple(fields), f"{path}:{number}") if pairs else line


def _checked(text, where):
    """`text` (a string or a pair), or None when every part of it is blank.

    Raises:
        DataError: one half of a pair blank (as a task .tsv refuses it:
            damage, not a sentence); a string that is not Unicode (a JSON
            "\\ud83d" escape alone, which no UTF-8 can hold).
    """
    parts = text if isinstance(text, tuple) else (text,)
    for field, part in enumerate(parts, 1):
        try:
            part.encode("utf-8")
        except UnicodeEncodeError as e:
            raise DataError(f"{where}: text {field} is not Unicode text ({e.reason}: "
                            f"{part[e.start:e.end]!r})") from None
    blank = [not part.strip() for part in parts]
    if all(blank):
        return None
    if any(blank):
        raise DataError(f"{where}: empty sentence in field {blank.index(True) + 1}")
    return text


def _json_records(lines, path, pairs, blank):
    for number, line in lines:
        where = f"{path}:{number}"
        text = None
        if line.strip():
            try:
                value = json.loads(line)
            except ValueError as e:
                raise DataError(f"{where}: not a JSON object ({e})") from None
            except RecursionError:
                raise DataError(f"{where}: not a JSON object (nested too deeply)") from None
            if not isinstance(value, dict):
                raise DataError(f"{where}: not a JSON object but a {type(value).__name__}")
            text = _checked(_record_text(value, where, pairs), where)
        if text is None:
            if blank == "skip":
                continue
            raise DataError(f"{where}: {'empty text' if line.strip() else 'blank line'}")
        yield number, text


def _record_text(value, where, pairs):
    """The input a record's fields (a dict) hold: a string or a pair."""
    if "text" in value:
        text = value["text"]
        if pairs:
            if not (isinstance(text, (list, tuple)) and len(text) == 2 and all(isinstance(t, str) for t in text)):
                raise DataError(f"{where}: field 'text' must be [first, second] (the task reads pairs), "
                                f"got {_kind(text)}")
            return tuple(text)
        if not isinstance(text, str):
            raise DataError(f"{where}: field 'text' must be a string (the task reads single sentences), "
                            f"got {_kind(text)}")
        return text
    if not pairs:
        raise DataError(f"{where}: no field 'text'")
    missing = [name for name in ("text_a", "text_b") if name not in value]
    if missing:
        raise DataError(f"{where}: no field 'text' or {' and '.join(map(repr, missing))} (the task reads pairs)")
    for name in ("text_a", "text_b"):
        if not isinstance(value[name], str):
            raise DataError(f"{where}: field {name!r} must be a string, got {_kind(value[name])}")
    return value["text_a"], value["text_b"]


def _kind(value):
    return "null" if value is None else type(value).__name__


def parquet_module():
    """pyarrow.parquet, or a ConfigError saying how to install it."""
    try:
        import pyarrow.parquet
    except ImportError:
        raise ConfigError('Parquet files need pyarrow: pip install "kbert[parquet]"') from None
    return pyarrow.parquet


def _parquet_records(path, pairs, blank):
    pq = parquet_module()
    import pyarrow

    try:
        reader = pq.ParquetFile(path)
        names = set(reader.schema_arrow.names)
    except (OSError, ValueError, pyarrow.ArrowException) as e:
        raise DataError(f"{path}: not a readable Parquet file ({e})") from None
    columns = ["text_a", "text_b"] if pairs else ["text"]
    missing = [c for c in columns if c not in names]
    if missing:
        wanted = "'text_a' and 'text_b' (the task reads pairs)" if pairs else "'text' (the task reads single sentences)"
        raise DataError(f"{path}: no column {' or '.join(map(repr, missing))}; the task reads {wanted}")
    number = 0
    for values in _columns(reader, path, columns, pyarrow.ArrowException):
        for row in zip(*values):
            number += 1
            where = f"{path}, row {number}"
            for column, value in zip(columns, row):
                if not isinstance(value, str):
                    raise DataError(f"{where}: column {column!r} must hold strings, got {_kind(value)}")
            text = _checked(tuple(row) if pairs else row[0], where)
            if text is not None:
                yield number, text
            elif blank == "error":
                raise DataError(f"{where}: empty text")


def _columns(reader, path, columns, arrow_errors):
    """The file's columns as Python lists, `PARQUET_BATCH_ROWS` rows at a
    time; pyarrow's errors (OSError, ValueError, its own, and the
    UnicodeDecodeError of string bytes it never checked) as a DataError
    naming the file, kept apart from the loop above, whose own DataErrors
    are ValueErrors too."""
    batches = reader.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns)
    while True:
        try:
            batch = next(batches, None)
            if batch is None:
                return
            values = [batch.column(c).to_pylist() for c in columns]
        except (OSError, ValueError, arrow_errors) as e:
            raise DataError(f"{path}: cannot read it ({type(e).__name__}: {e})") from None
        yield values
