"""The container of a model file: the safetensors layout, written and read with bounds checked first.

A file is an 8-byte little-endian header length ``N``, ``N`` bytes of JSON (the
tensor table, plus ``"__metadata__"``: string keys and string values), then
the arrays' bytes, back to back, little-endian, C order. Each table entry
gives an array's ``dtype`` (``"F32"``...), ``shape`` and ``data_offsets``
(begin and end, relative to the end of the header). Any safetensors reader
(``safetensors.numpy.load_file``, ``safetensors.torch.load_file``) reads these
files.

dagrad reads and writes the layout itself rather than through the
``safetensors`` package: it must read from a file descriptor it has already
checked to be a regular file, compare the table with the graph's own record
before allocating anything, and say in a ``FormatError`` which part is wrong;
and it stores complex numbers, which safetensors lacks, as pairs of reals.
The layout is small (this module), and the test suite checks it against the
``safetensors`` package in both directions.
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass
from typing import BinaryIO, Optional

import numpy as np

from .untrusted import Source, parse_json, quote

__all__ = ["MAX_HEADER_BYTES", "Entry", "storage", "write", "open_regular", "read_table", "read_array", "read_into", "matches"]

MAX_HEADER_BYTES = 100_000_000
"""The largest header dagrad writes or reads: safetensors' own limit, so every such reader accepts the file."""

_ALIGN = 8  # the header is padded with spaces to a multiple of 8, so 8-byte arrays start aligned

_CODES = {
    "bool": "BOOL", "int8": "I8", "uint8": "U8", "int16": "I16", "uint16": "U16", "int32": "I32",
    "uint32": "U32", "int64": "I64", "uint64": "U64", "float16": "F16", "float32": "F32", "float64": "F64",
}
_DTYPES = {code: np.dtype(name).newbyteorder("<") for name, code in _CODES.items()}


@dataclass(frozen=True)
class Entry:
    """One array of the table: safetensors dtype code, shape, and byte range in the data section."""

    code: str
    shape: tuple
    begin: int
    end: int


def storage(dtype: np.dtype) -> tuple[str, np.dtype, tuple]:
    """How an array of ``dtype`` is stored: ``(code, little-endian storage dtype, extra trailing axes)``.

    Numbers safetensors has are stored as themselves; complex numbers as pairs
    of reals (a trailing axis of 2); any other numeric dtype (``float128``) as
    its bytes (a trailing axis of its item size, ``U8``).

    >>> storage(np.dtype("float32"))[0], storage(np.dtype("complex128"))[0::2]
    ('F32', ('F64', (2,)))
    """
    little = dtype.newbyteorder("<")
    code = _CODES.get(little.name)
    if code is not None:
        return code, little, ()
    if dtype.kind == "c" and dtype.itemsize in (8, 16):
        code = "F32" if dtype.itemsize == 8 else "F64"
        return code, _DTYPES[code], (2,)
    return "U8", _DTYPES["U8"], (dtype.itemsize,)


def _as_stored(array: np.ndarray) -> tuple[str, np.ndarray]:
    code, dtype, extra = storage(array.dtype)
    data = np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")
    if extra:
        data = data.reshape(-1).view(dtype).reshape(array.shape + extra)
    return code, data


def write(f: BinaryIO, metadata: dict[str, str], arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` (by key) and the string ``metadata`` to the open binary file ``f``.

    Arrays are placed widest item first, so that each starts aligned to its
    item size; one array at a time is converted, so saving needs little more
    memory than the arrays themselves.
    """
    stored = {key: _as_stored(a) for key, a in arrays.items()}
    order = sorted(stored, key=lambda key: -stored[key][1].dtype.itemsize)  # stable: keeps key order otherwise
    table: dict = {}
    offset = 0
    for key in order:
        code, data = stored[key]
        table[key] = {"dtype": code, "shape": list(data.shape), "data_offsets": [offset, offset + data.nbytes]}
        offset += data.nbytes
    table["__metadata__"] = metadata
    header = json.dumps(table, separators=(",", ":"), allow_nan=False).encode("ascii")
    header += b" " * (-len(header) % _ALIGN)
    if len(header) > MAX_HEADER_BYTES:
        raise ValueError(f"the header would be {len(header):,} bytes, more than {MAX_HEADER_BYTES:,}")
    f.write(len(header).to_bytes(8, "little"))
    f.write(header)
    for key in order:
        f.write(stored[key][1].reshape(-1).view(np.uint8).data)


# ---------------------------------------------------------------- reading --


def open_regular(path: str, source: Source) -> tuple[BinaryIO, int]:
    """Open ``path`` for reading if it is a regular file: ``(file, size)``; otherwise a ``FormatError``.

    Opened without blocking (a FIFO would wait forever for a writer) and
    checked on the open descriptor, so a path swapped after a check cannot
    turn into a device or a pipe.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise source.error(None, f"cannot be read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise source.error(None, f"is not a regular file (it is {_kind(info.st_mode)}); only files are loaded")
        f = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    return f, info.st_size


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a pipe"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def _read_exactly(f: BinaryIO, n: int, source: Source, part: str) -> bytes:
    chunks, left = [], n
    while left:
        chunk = f.read(min(left, 1 << 24))
        if not chunk:
            raise source.error(part, f"is cut short: {n - left} of {n} bytes are there (the file changed or is truncated)")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_table(f: BinaryIO, size: int, source: Source) -> tuple[dict, dict[str, Entry], int]:
    """Read and check the header: ``(metadata, {key: Entry}, offset of the data section)``.

    Checked before anything is allocated for arrays: the header length
    against the file and ``MAX_HEADER_BYTES``; every entry's dtype code, shape
    and offsets; that the byte ranges tile the data section exactly (no gap,
    no overlap, nothing after); and that each range holds exactly what the
    shape needs. So the arrays together are never larger than the file.
    """
    if size < 8:
        raise source.error("header", f"is missing: the file has {size} bytes")
    length = int.from_bytes(_read_exactly(f, 8, source, "header length"), "little")
    if length > MAX_HEADER_BYTES or length > size - 8:
        raise source.error("header", f"declares {length:,} bytes, but the file has {size - 8:,} after the length "
                                     f"(and at most {MAX_HEADER_BYTES:,} are allowed)")
    raw = _read_exactly(f, length, source, "header")
    if not raw.startswith(b"{"):
        raise source.error("header", "is not a JSON object")
    header = parse_json(raw, source, "header")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise source.error("header", "__metadata__ must map names to strings")
    data_start = 8 + length
    entries = {key: _entry(key, value, source) for key, value in header.items()}
    position = 0
    for key, entry in sorted(entries.items(), key=lambda item: (item[1].begin, item[1].end)):
        if entry.begin != position:
            detail = "overlaps the array before it" if entry.begin < position else f"leaves a gap at byte {position}"
            raise source.error(f"array {quote(key)}", f"starts at byte {entry.begin:,}, which {detail}")
        position = entry.end
    if position != size - data_start:
        raise source.error("data", f"the arrays take {position:,} bytes, but the file has {size - data_start:,} after the header")
    return metadata, entries, data_start


def _entry(key: str, value: object, source: Source) -> Entry:
    part = f"array {quote(key)}"
    if not isinstance(value, dict) or set(value) != {"dtype", "shape", "data_offsets"}:
        raise source.error(part, "must have exactly dtype, shape and data_offsets")
    code, shape, offsets = value["dtype"], value["shape"], value["data_offsets"]
    if code not in _DTYPES:
        raise source.error(part, f"has dtype {quote(code)}; dagrad stores {', '.join(_DTYPES)}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape) or len(shape) > 64:
        raise source.error(part, f"has shape {quote(shape)}, not a list of sizes")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise source.error(part, f"has data_offsets {quote(offsets)}, not [begin, end]")
    needed = math.prod(shape) * _DTYPES[code].itemsize
    if offsets[1] - offsets[0] != needed:
        raise source.error(part, f"has {offsets[1] - offsets[0]:,} bytes, but a {code} array of shape {shape} "
                                 f"needs {needed:,}")
    return Entry(code, tuple(shape), offsets[0], offsets[1])


def read_array(f: BinaryIO, entry: Entry, data_start: int, dtype: np.dtype, shape: tuple,
               source: Source, part: str) -> np.ndarray:
    """The array of ``entry``, as ``dtype`` and ``shape`` (the caller has checked that the entry stores them)."""
    _, stored, _ = storage(dtype)
    array = np.empty(entry.shape, stored)
    f.seek(data_start + entry.begin)
    read_into(f, array, source, part)
    if array.dtype != dtype:
        array = array.reshape(-1).view(dtype.newbyteorder("<")).reshape(shape)
        if dtype.byteorder == ">":
            array = array.astype(dtype)
    return array.reshape(shape)


def read_into(f: BinaryIO, array: np.ndarray, source: Source, part: str) -> None:
    """Fill the contiguous ``array`` with its bytes from ``f``, in place; a ``FormatError`` if the file ends first."""
    view = array.reshape(-1).view(np.uint8)
    done = 0
    while done < view.size:
        n = f.readinto(view[done:])
        if not n:
            raise source.error(part, "is cut short (the file changed or is truncated)")
        done += n


def matches(entry: Optional[Entry], dtype: np.dtype, shape: tuple) -> bool:
    """Whether ``entry`` stores an array of ``dtype`` and ``shape`` as ``write`` would."""
    code, _, extra = storage(dtype)
    return entry is not None and entry.code == code and entry.shape == tuple(shape) + extra
