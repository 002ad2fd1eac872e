"""Tabular inputs (Azure ML's TabularDataset): delimited or parquet files read as pandas rows.

Two halves, both importing the standard library only, so the worker (started by path on the
step's interpreter) can load this file beside it:

- planning, on the driver: a mini-batch is a list of *pieces* of files, ``{"path", "start",
  "end"}`` byte ranges cut at about ``mini_batch_size`` bytes without reading the data (a row
  belongs to the piece where its line starts), or the whole files of one partition;
- reading, in the worker (and for the SDK's ``to_pandas_dataframe``): pieces become one pandas
  DataFrame, with Azure's ``include_path`` column first and ``partition_format`` columns last.

pandas (and pyarrow, for parquet) are imported only when rows are read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import io
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

Piece = dict[str, Any]  # {"path": str, "start": int, "end": int | None}; end None: to the end

#: Azure's encoding names -> Python codecs.
ENCODINGS = {
    "utf8": "utf-8",
    "utf8bom": "utf-8-sig",
    "iso88591": "iso-8859-1",
    "latin1": "latin-1",
    "ascii": "ascii",
    "utf16": "utf-16",
    "utf32": "utf-32",
    "windows1252": "cp1252",
}
#: Encodings where every b"\n" byte ends a line, so a file can be cut between any two lines.
LINE_SAFE = frozenset({"utf8", "utf8bom", "iso88591", "latin1", "ascii", "windows1252"})
#: The folder name partition_by gives a missing key value (Hive's name for it).
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
DEFAULT_BATCH_BYTES = 1024 * 1024  # Azure's default mini_batch_size for tabular inputs
DEFAULT_BATCH_FILES = 10  # ... and for files
_SIZE = re.compile(r"(\d+)\s*([kKmMgG][bB])?")
_UNITS = {"": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
_DATE_PARTS = {"yyyy": (r"\d{4}", "%Y"), "MM": (r"\d{2}", "%m"), "dd": (r"\d{2}", "%d")}
_DATE_PARTS |= {"HH": (r"\d{2}", "%H"), "mm": (r"\d{2}", "%M"), "ss": (r"\d{2}", "%S")}
_DATE_TOKEN = re.compile("|".join(_DATE_PARTS))
GLOB = frozenset("*?[")


class TableError(Exception):
    """The input cannot be read as asked (a file outside partition_format, a missing pandas)."""


def parse_size(text: str | int) -> int:
    """Azure's mini_batch_size: ``1024``, ``"1024"``, ``"64KB"``, ``"5MB"``, ``"1GB"``."""
    if isinstance(text, int):
        return text
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a size such as 1024, 64KB, 5MB or 1GB")
    return int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]


# ---- partition_format ---------------------------------------------------------------------------


class PartitionFormat:
    """Azure's ``partition_format``: ``{name}`` takes one path segment (or part of one) as a
    string column, ``{name:yyyy/MM/dd}`` a datetime. It is matched against the end of a file's
    path below the folder the input starts from (``input_base``), from the first segment that
    holds a key: a dataset moved to another folder (or a path parameter given another value)
    still matches, and a file outside the layout does not."""

    def __init__(self, text: str) -> None:
        self.text = text
        first = text.find("{")
        if first < 0:
            raise ValueError(f"partition_format {text!r} has no {{key}}")
        tail = text[text.rfind("/", 0, first) + 1 :]
        self.keys: list[str] = []
        self.dates: dict[str, str] = {}  # key -> strptime format
        pattern = ""
        for literal, key, fmt in re.findall(r"([^{]*)(?:\{([^}:]+)(?::([^}]*))?\})?", tail):
            pattern += re.escape(literal).replace(r"\*", "[^/]*")
            if not key:
                continue
            if key in self.keys:
                raise ValueError(f"partition_format {text!r} names {key!r} twice")
            self.keys.append(key)
            if fmt:
                regex, self.dates[key] = _date_pattern(fmt)
                pattern += f"(?P<k{len(self.keys)}>{regex})"
            else:
                pattern += f"(?P<k{len(self.keys)}>[^/]+?)"
        self._regex = re.compile(f"(?:^|/){pattern}$")

    def values(self, path: str) -> dict[str, str] | None:
        """Each key's text in ``path`` (None when the path does not match)."""
        match = self._regex.search(path.replace(os.sep, "/"))
        if match is None:
            return None
        return {key: match.group(f"k{i}") for i, key in enumerate(self.keys, 1)}

    def __repr__(self) -> str:
        return f"PartitionFormat({self.text!r})"


def _date_pattern(fmt: str) -> tuple[str, str]:
    regex, strp, pos = "", "", 0
    for token in _DATE_TOKEN.finditer(fmt):
        regex += re.escape(fmt[pos : token.start()]) + _DATE_PARTS[token.group()][0]
        strp += fmt[pos : token.start()].replace("%", "%%") + _DATE_PARTS[token.group()][1]
        pos = token.end()
    return regex + re.escape(fmt[pos:]), strp + fmt[pos:].replace("%", "%%")


def partition_values(fmt: PartitionFormat, path: str, base: str) -> dict[str, str]:
    """The keys' values of a file below ``base``; a TableError when it is outside the format."""
    values = fmt.values(os.path.relpath(path, base))
    if values is None:
        raise TableError(f"{path} does not match partition_format {fmt.text!r} (below {base})")
    return values


def input_base(pattern: str) -> str:
    """The folder an input starts from: a folder itself, a file's folder, or a glob's folders
    up to the first one with a wildcard."""
    if GLOB & set(pattern):
        parts = pattern.split("/")
        first = next(i for i, part in enumerate(parts) if GLOB & set(part))
        return "/".join(parts[:first]) or "/"
    return pattern if os.path.isdir(pattern) else os.path.dirname(pattern)


def whole_files(
    files: Iterable[str], fmt: PartitionFormat | None = None, base: str = ""
) -> list[Piece]:
    """Pieces that are whole files, with their partition values when there is a format."""
    return [_piece(path, 0, None, fmt, base) for path in files]


def _piece(path: str, start: int, end: int | None, fmt: PartitionFormat | None, base: str) -> Piece:
    piece: Piece = {"path": path, "start": start, "end": end}
    if fmt is not None:
        piece["values"] = partition_values(fmt, path, base)
    return piece


# ---- planning (the driver) ------------------------------------------------------------------


def plan_pieces(
    files: Iterable[str],
    options: Mapping[str, Any],
    size: int,
    fmt: PartitionFormat | None = None,
    base: str = "",
) -> list[list[Piece]]:
    """Mini-batches of about ``size`` bytes each. Delimited files are cut between lines (never
    with ``support_multi_line``, where a quoted value may hold a line break, nor in encodings
    where a newline byte can be part of a character); parquet files go whole. With a
    partition_format, each piece carries its file's key values (``values``)."""
    cut = (
        options.get("format", "delimited") == "delimited"
        and not options.get("support_multi_line")
        and options.get("encoding", "utf8") in LINE_SAFE
    )
    batches: list[list[Piece]] = []
    current: list[Piece] = []
    room = size
    for path in files:
        total = os.path.getsize(path)
        offset = 0
        while offset < total:
            if cut and total - offset > room:
                current.append(_piece(path, offset, offset + room, fmt, base))
                offset += room
                room = 0
            else:
                current.append(_piece(path, offset, None, fmt, base))
                room -= total - offset
                offset = total
            if room <= 0:
                batches.append(current)
                current, room = [], size
    if current:
        batches.append(current)
    return batches


def plan_partitions(
    files: Iterable[str], fmt: PartitionFormat, keys: Sequence[str], base: str
) -> list[tuple[dict[str, str], list[Piece]]]:
    """One group per combination of ``keys``' values, in the order files list them; each file
    a whole piece with its values."""
    groups: dict[tuple[str, ...], list[Piece]] = {}
    for piece in whole_files(files, fmt, base):
        values = piece["values"]
        groups.setdefault(tuple(values[k] for k in keys), []).append(piece)
    return [(dict(zip(keys, key, strict=True)), pieces) for key, pieces in groups.items()]


def count_rows(pieces: Iterable[Piece], options: Mapping[str, Any]) -> int:
    """Rows in pieces without pandas, for a mini-batch that no worker got to read: lines for
    delimited files (less their header), parquet metadata when pyarrow is here, else one per
    file."""
    total = 0
    for piece in pieces:
        if options.get("format", "delimited") == "parquet":
            try:
                parquet = importlib.import_module("pyarrow.parquet")
                total += int(parquet.ParquetFile(piece["path"]).metadata.num_rows)
            except Exception:
                total += 1
            continue
        with open(piece["path"], "rb") as handle:
            header = handle.readline() if options.get("header", True) else b""
            data = _piece_bytes(handle, piece, len(header))
        total += data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    return total


# ---- reading (the worker, the SDK) ----------------------------------------------------------


def pandas_module(options: Mapping[str, Any], extra: str = "") -> Any:
    """pandas, and pyarrow for parquet; a TableError that names the fix when one is missing."""
    try:
        pandas = importlib.import_module("pandas")
    except ImportError:
        raise TableError(
            "reading a tabular dataset needs pandas, which this Python does not have: "
            f"pip install pandas{extra}"
        ) from None
    if options.get("format") == "parquet":
        try:
            importlib.import_module("pyarrow")
        except ImportError:
            raise TableError(
                "reading parquet files needs pyarrow, which this Python does not have: "
                "pip install pyarrow (or read delimited files: Dataset.Tabular.from_delimited_files)"
            ) from None
    return pandas


def read_pieces(
    pieces: Sequence[Piece],
    options: Mapping[str, Any],
    partition_format: str | None = None,
) -> Any:
    """One DataFrame of the pieces' rows, in order: ``Path`` first with ``include_path``, the
    partition_format's keys last (from each piece's ``values``), then ``set_column_types``
    applied."""
    pandas = pandas_module(options)
    fmt = PartitionFormat(partition_format) if partition_format else None
    frames = []
    for piece in pieces:
        frame = _read_piece(pandas, piece, options)
        if options.get("include_path"):
            frame.insert(0, "Path", piece["path"])
        if fmt is not None:
            values = piece["values"]
            for key in fmt.keys:
                frame[key] = _partition_value(values[key], key, fmt)
        frames.append(frame)
    if not frames:
        return pandas.DataFrame()
    frame = frames[0] if len(frames) == 1 else pandas.concat(frames, ignore_index=True)
    frame = _typed(pandas, frame, options.get("set_column_types") or {})
    if options.get("empty_as_string"):
        for column in frame.columns:
            if frame[column].dtype == object:
                frame[column] = frame[column].fillna("")
    return frame


def typed_partition(
    values: Mapping[str, str], options: Mapping[str, Any] | None, partition_format: str | None
) -> dict[str, Any]:
    """A mini-batch's ``partition_key_value``: typed as its columns are (set_column_types, or a
    datetime key of partition_format), strings otherwise."""
    fmt = PartitionFormat(partition_format) if partition_format else None
    types = (options or {}).get("set_column_types") or {}
    typed: dict[str, Any] = {}
    for key, text in values.items():
        value: Any = _partition_value(text, key, fmt)
        kind = types.get(key, "")
        if value is not None and kind in ("int", "float", "bool"):
            with contextlib.suppress(ValueError):
                value = _CONVERT[kind](value)
        typed[key] = value
    return typed


def _partition_value(text: str, key: str, fmt: PartitionFormat | None) -> Any:
    """A key's value as partition_by wrote it into a folder name."""
    if text == NULL_PARTITION:
        return None
    text = text.replace("%2F", "/").replace("%2E", ".").replace("%25", "%")
    if fmt is not None and key in fmt.dates:
        return dt.datetime.strptime(text, fmt.dates[key])
    return text


def _bool(text: Any) -> bool:
    lowered = str(text).strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(text)


def _read_piece(pandas: Any, piece: Piece, options: Mapping[str, Any]) -> Any:
    if options.get("format") == "parquet":
        return pandas.read_parquet(piece["path"])
    header = options.get("header", True)
    kwargs: dict[str, Any] = {
        "sep": options.get("separator", ","),
        "header": 0 if header else None,
        "encoding": ENCODINGS.get(options.get("encoding", "utf8"), "utf-8"),
    }
    if not options.get("infer_column_types", True):
        kwargs["dtype"] = str
    if len(kwargs["sep"]) > 1:
        kwargs["engine"] = "python"
    whole = piece.get("start", 0) == 0 and piece.get("end") is None
    try:
        if whole:
            frame = pandas.read_csv(piece["path"], **kwargs)
        else:
            with open(piece["path"], "rb") as handle:
                head = handle.readline() if header else b""
                data = _piece_bytes(handle, piece, len(head))
            frame = pandas.read_csv(io.BytesIO(head + data), **kwargs)
    except pandas.errors.EmptyDataError:
        frame = pandas.DataFrame()
    if not header:
        frame.columns = [f"Column{i}" for i in range(1, len(frame.columns) + 1)]
    return frame


def _piece_bytes(handle: io.BufferedReader, piece: Piece, header_end: int) -> bytes:
    """The lines that start in ``[start, end)`` (after the header line)."""
    start, end = max(int(piece.get("start", 0)), header_end), piece.get("end")
    if start > header_end:
        handle.seek(start - 1)
        if handle.read(1) != b"\n":
            handle.readline()  # the line that started before this piece belongs to the one before
        start = handle.tell()
    else:
        handle.seek(start)
    if end is None:
        return handle.read()
    if start >= end:
        return b""
    data = handle.read(end - start)
    if data and not data.endswith(b"\n"):
        data += handle.readline()
    return data


def _typed(pandas: Any, frame: Any, types: Mapping[str, str]) -> Any:
    for column, kind in types.items():
        if column not in frame.columns:
            continue
        name, _, fmt = kind.partition(":")
        values = frame[column]
        if name == "string":
            frame[column] = values.map(lambda v: v if v is None or v != v else str(v))
        elif name == "int":
            numbers = pandas.to_numeric(values, errors="coerce")
            frame[column] = numbers.astype("int64" if not numbers.isna().any() else "Int64")
        elif name == "float":
            frame[column] = pandas.to_numeric(values, errors="coerce").astype("float64")
        elif name == "bool":
            flags = values.map(_bool_or_none)
            frame[column] = flags.astype("boolean" if flags.isna().any() else bool)
        elif name == "datetime":
            frame[column] = pandas.to_datetime(values, format=fmt or None, errors="coerce")
    return frame


_CONVERT: dict[str, Callable[[Any], Any]] = {"int": int, "float": float, "bool": _bool}


def _bool_or_none(value: Any) -> bool | None:
    if value is None or value != value:  # None or NaN
        return None
    if isinstance(value, bool):
        return value
    try:
        return _bool(value)
    except ValueError:
        return None
