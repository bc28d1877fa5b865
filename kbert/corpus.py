"""Large inputs read as streams: the files of `kbert predict --input` and
`kbert materials --unlabeled`, one record at a time in bounded memory.

A file's format comes from its name:

- `.jsonl`, `.ndjson`: JSON lines, an object a line: `"text"` (a string,
  or for a pair task the `[first, second]` list that `kbert predict`
  writes) or `"text_a"` and `"text_b"`; other fields are ignored.
- `.parquet`: a `text` column, or `text_a` and `text_b` (read with pyarrow:
  `pip install "kbert[parquet]"`).
- anything else: text, one input a line, a pair as `first<TAB>second`.

Text and JSON lines are UTF-8 (a leading byte-order mark dropped), lines
ending at "\\n", "\\r\\n" or "\\r", as `kbert predict --file` reads them.  A
record's place is its line (from 1), or its row (from 1) in Parquet.
Damage is a `DataError` naming the file and the place: bytes that are not
UTF-8, a line that is not a JSON object, a missing field, a tab in a
single-sentence input, an empty half of a pair.  A blank record is skipped
or refused, as the caller says.
"""

import glob
import json
import os

from kbert.errors import ConfigError, DataError

# Records per Parquet read: bounds memory whatever the file's row groups.
PARQUET_BATCH_ROWS = 8192
JSON_LINES = (".jsonl", ".ndjson")


def expand_inputs(patterns, flag):
    """Input files, in the order given, each glob pattern's matches sorted.

    Raises:
        DataError: naming `flag` and the pattern: a missing file, or a
            pattern that matches no file.
    """
    paths = []
    for pattern in patterns:
        if os.path.isfile(pattern):  # a file named like a pattern ("data[1].txt") is that file
            paths.append(pattern)
        elif glob.has_magic(pattern):
            matches = sorted(path for path in glob.glob(pattern) if os.path.isfile(path))
            if not matches:
                raise DataError(f"{flag} {pattern}: no file matches")
            paths += matches
        else:
            raise DataError(f"{flag} {pattern}: no such file")
    return paths


def file_format(path):
    """"jsonl", "parquet" or "text", by the file's name."""
    name = os.fspath(path).lower()
    if name.endswith(JSON_LINES):
        return "jsonl"
    return "parquet" if name.endswith(".parquet") else "text"


def place(path, number, fmt=None):
    """A record's place in messages: "FILE:LINE", or "FILE, row N" in Parquet."""
    return f"{path}, row {number}" if (fmt or file_format(path)) == "parquet" else f"{path}:{number}"


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
    if fmt == "parquet":
        yield from _parquet_records(path, pairs, blank)
        return
    try:
        with open(path, "rb") as stream:  # bytes, decoded a line at a time: an error names its line
            lines = text_lines(stream, path)
            if fmt == "jsonl":
                yield from _json_records(lines, path, pairs, blank)
            else:
                yield from text_records(lines, path, pairs=pairs, blank=blank)
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})") from None


def text_lines(stream, where):
    """(line number from 1, text) of each line of a binary stream, by the
    rule of the module docstring ("\\n", "\\r\\n" and "\\r" end a line;
    the end of the last line is not a line).

    Raises:
        DataError: "WHERE:LINE: not UTF-8 text (reason)".
    """
    number = 0
    for index, raw in enumerate(stream):
        if index == 0 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
            if not raw:  # a byte-order mark and nothing else: no line
                return
        raw = raw[:-1] if raw.endswith(b"\n") else raw
        raw = raw[:-1] if raw.endswith(b"\r") else raw  # "\r\n", or a lone "\r" ending the file
        # A lone "\r" ends a line too (open()'s universal newlines).  Neither
        # byte occurs inside a UTF-8 character, so each part decodes alone.
        for part in raw.split(b"\r"):
            number += 1
            try:
                yield number, part.decode("utf-8")
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
        yield number, _checked(tuple(fields) if pairs else line, f"{path}:{number}")


def _checked(text, where):
    # As a task .tsv refuses one: an empty half of a pair is damage, not a sentence.
    if isinstance(text, tuple):
        for field, part in enumerate(text, 1):
            if not part.strip():
                raise DataError(f"{where}: empty sentence in field {field}")
    return text


def _json_records(lines, path, pairs, blank):
    for number, line in lines:
        where = f"{path}:{number}"
        if not line.strip():
            if blank == "skip":
                continue
            raise DataError(f"{where}: blank line")
        try:
            value = json.loads(line)
        except ValueError as e:
            raise DataError(f"{where}: not a JSON object ({e})") from None
        except RecursionError:
            raise DataError(f"{where}: not a JSON object (nested too deeply)") from None
        if not isinstance(value, dict):
            raise DataError(f"{where}: not a JSON object but a {type(value).__name__}")
        text = _record_text(value, where, pairs)
        if text is None:
            if blank == "skip":
                continue
            raise DataError(f"{where}: empty text")
        yield number, text


def _record_text(value, where, pairs):
    """The input of a record's fields (a dict), None when it is blank."""
    if "text" in value:
        text = value["text"]
        if pairs:
            if not (isinstance(text, (list, tuple)) and len(text) == 2 and all(isinstance(t, str) for t in text)):
                raise DataError(f"{where}: field 'text' must be [first, second] (the task reads pairs), "
                                f"got {_kind(text)}")
            return _checked(tuple(text), where)
        if not isinstance(text, str):
            raise DataError(f"{where}: field 'text' must be a string (the task reads single sentences), "
                            f"got {_kind(text)}")
        return text if text.strip() else None
    if not pairs:
        raise DataError(f"{where}: no field 'text'")
    missing = [name for name in ("text_a", "text_b") if name not in value]
    if missing:
        raise DataError(f"{where}: no field 'text' or {' and '.join(map(repr, missing))} (the task reads pairs)")
    for name in ("text_a", "text_b"):
        if not isinstance(value[name], str):
            raise DataError(f"{where}: field {name!r} must be a string, got {_kind(value[name])}")
    return _checked((value["text_a"], value["text_b"]), where)


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
    try:
        reader = pq.ParquetFile(path)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path}: not a readable Parquet file ({e})") from None
    names = set(reader.schema_arrow.names)
    columns = ["text"] if "text" in names and not pairs else ["text_a", "text_b"]
    missing = [c for c in columns if c not in names]
    if missing:
        wanted = "'text_a' and 'text_b'" if pairs else "'text'"
        raise DataError(f"{path}: no column {' or '.join(map(repr, missing))}; the task reads {wanted}")
    number = 0
    for batch in _batches(reader, path, columns):
        values = [batch.column(c).to_pylist() for c in columns]
        for row in zip(*values):
            number += 1
            where = f"{path}, row {number}"
            for column, value in zip(columns, row):
                if not isinstance(value, str):
                    raise DataError(f"{where}: column {column!r} must hold strings, got {_kind(value)}")
            if pairs:
                yield number, _checked(tuple(row), where)
            elif row[0].strip():
                yield number, row[0]
            elif blank == "error":
                raise DataError(f"{where}: empty text")


def _batches(reader, path, columns):
    """The file's record batches; pyarrow's errors (OSError, ValueError) as a
    DataError naming the file (kept apart from the loop above, whose own
    DataErrors are ValueErrors too)."""
    batches = reader.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: cannot read it ({e})") from None
        yield batch
