"""Format 1 (dagrad 0.1): a zip of ``graph.json`` and ``params.npz``, read with every size checked first.

Zip members declare their sizes in the archive's directory, which a hostile
file can set freely, and numpy's ``.npy`` headers declare shapes. Nothing is
decompressed or allocated before: the member list is exactly the expected one
(no duplicates, no encryption); ``graph.json`` (deflated) is within
``MAX_HEADER_BYTES``; the arrays are stored uncompressed, as dagrad 0.1 wrote
them, so their bytes are really in the file; and each array's ``.npy`` header
matches the dtype and shape the document records, with the member's size
exactly what that shape needs. Reads never go past a member's declared size,
so a zip bomb costs no more than the limit it was checked against.
"""

from __future__ import annotations

import zipfile
import zlib
from typing import BinaryIO

import numpy as np

from ..node import SOURCE_KINDS
from .container import MAX_HEADER_BYTES, read_into
from .model import ArraySpec
from .untrusted import Source, parse_json, quote

__all__ = ["ZIP_MAGIC", "Reader"]

ZIP_MAGIC = b"PK\x03\x04"
GRAPH, PARAMS = "graph.json", "params.npz"
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}  # what dagrad 0.1 wrote
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError,
               KeyError, IndexError)


def _members(zf: zipfile.ZipFile, expected: set, source: Source, where: str, size: int,
             deflated: frozenset = frozenset()) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by name, refusing duplicates, strangers, encryption and exotic compression.

    Only the members in ``deflated`` may be compressed; every other member
    must be stored, with its declared size what it takes in the archive
    (of ``size`` bytes), so reading it never needs more memory than the file has.
    """
    infos: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        name = info.filename
        part = f"{where}member {quote(name)}"
        if name in infos:
            raise source.error(part, "appears twice in the archive")
        if name not in expected:
            raise source.error(part, f"is not part of a dagrad model (expected {', '.join(sorted(expected)) or 'none'})")
        if info.flag_bits & 0x1:
            raise source.error(part, "is encrypted")
        if info.compress_type not in _METHODS:
            raise source.error(part, f"uses compression method {info.compress_type}; only stored and deflated are read")
        if name not in deflated:
            if info.compress_type != zipfile.ZIP_STORED:
                raise source.error(part, f"is {_METHODS[info.compress_type]}; dagrad stores it uncompressed")
            if info.file_size != info.compress_size or info.file_size > size:
                raise source.error(part, f"declares {info.file_size:,} bytes, but takes {info.compress_size:,} in an "
                                         f"archive of {size:,}")
        infos[name] = info
    missing = sorted(expected - set(infos))
    if missing:
        raise source.error(f"{where}member {quote(missing[0])}", "is missing")
    return infos


class Reader:
    """A format-1 file, opened; ``document()`` then ``arrays(specs)``."""

    def __init__(self, f: BinaryIO, size: int, source: Source):
        f.seek(0)
        self.source = source
        try:
            self.zf = zipfile.ZipFile(f)
            self.infos = _members(self.zf, {GRAPH, PARAMS}, source, "", size, deflated=frozenset({GRAPH}))
        except _ZIP_ERRORS as exc:
            raise source.error("zip archive", f"is truncated or damaged: {quote(str(exc))}") from None

    def document(self) -> dict:
        info = self.infos[GRAPH]
        part = f"member {quote(GRAPH)}"
        if info.file_size > MAX_HEADER_BYTES:
            raise self.source.error(part, f"declares {info.file_size:,} bytes, more than the {MAX_HEADER_BYTES:,} allowed")
        try:
            with self.zf.open(info) as member:
                data = member.read(info.file_size + 1)  # never more than declared: zipfile stops there
        except _ZIP_ERRORS as exc:
            raise self.source.error(part, f"cannot be read: {quote(str(exc))}") from None
        document = parse_json(data, self.source, part)
        version = document.get("format_version") if isinstance(document, dict) else None
        if version == 1:
            return _upgrade(document)
        if type(version) is int and version > 1:
            raise self.source.error(part, f"says format version {version}, but only format 1 files are zip archives")
        return document  # not a dagrad document: check_document says why

    def arrays(self, specs: dict[str, ArraySpec]) -> dict[str, np.ndarray]:
        info = self.infos[PARAMS]
        where = f"{PARAMS} "
        try:
            with self.zf.open(info) as member:
                inner = zipfile.ZipFile(member)
                members = _members(inner, {key + ".npy" for key in specs}, self.source, where, info.file_size)
                return {key: self._array(inner, members[key + ".npy"], spec, where) for key, spec in specs.items()}
        except _ZIP_ERRORS as exc:
            raise self.source.error(f"member {quote(PARAMS)}", f"is damaged: {quote(str(exc))}") from None

    def _array(self, inner: zipfile.ZipFile, info: zipfile.ZipInfo, spec: ArraySpec, where: str) -> np.ndarray:
        part = f"{where}member {quote(info.filename)} ({spec.part})"
        with inner.open(info) as npy:
            try:
                version = np.lib.format.read_magic(npy)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
                shape, fortran, dtype = read_header[version](npy)
            except (ValueError, KeyError, SyntaxError, TypeError, EOFError) as exc:
                raise self.source.error(part, f"is not a .npy array: {quote(str(exc))}") from None
            if dtype.hasobject:
                raise self.source.error(part, "holds objects, which would need pickle; dagrad never loads them")
            if dtype != spec.dtype or tuple(shape) != spec.shape:
                raise self.source.error(part, f"is {dtype} of shape {list(shape)}, but the document records "
                                              f"{spec.dtype} of shape {list(spec.shape)}")
            nbytes = int(np.prod(spec.shape, dtype=object)) * dtype.itemsize
            if info.file_size != npy.tell() + nbytes:
                raise self.source.error(part, f"declares {info.file_size:,} bytes, but its header and a {dtype} array "
                                              f"of shape {list(shape)} take {npy.tell() + nbytes:,}")
            array = np.empty(spec.shape[::-1] if fortran else spec.shape, dtype)
            read_into(npy, array, self.source, part)
        return array.T if fortran else array


def _upgrade(document: dict) -> dict:
    """A format-1 document in format 2's shape: a table of op providers, and each array keyed by its node's name."""
    nodes = document.get("nodes")
    if not isinstance(nodes, list):
        return document
    ops: dict = {}
    upgraded = []
    for rec in nodes:
        if not isinstance(rec, dict):
            upgraded.append(rec)
            continue
        rec = dict(rec)
        rec.setdefault("attrs", {})
        provider = {key: rec.pop(key, None) for key in ("plugin", "distribution", "version")}
        if rec.get("op") not in SOURCE_KINDS and isinstance(rec.get("op"), str):
            ops.setdefault(rec["op"], provider)
        if rec.get("op") in ("param", "const"):
            rec["array"] = rec.get("name")
        upgraded.append(rec)
    return {**{k: v for k, v in document.items() if k not in ("plugins", "nodes")}, "ops": ops, "nodes": upgraded}
