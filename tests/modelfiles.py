"""Helpers that take model files apart and craft hostile ones, small, inside the tests (nothing large on disk)."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

import dagrad as dg
from dagrad.io import container


def small_mlp() -> tuple[dg.Graph, dg.Tensor]:
    """A graph with scopes, attrs (axis, index, reduction), a const, a frozen param and a plugin op."""
    rng = np.random.default_rng(0)
    g = dg.Graph("mlp")
    x = g.input("x", shape=(None, 4), dtype="float32")
    y = g.input("y", shape=(None,), dtype="int64")
    with g.scope("fc1"):
        W1 = g.param("W", rng.normal(size=(4, 5)).astype(np.float32))
        b1 = g.param("b", rng.normal(size=(5,)).astype(np.float32))
        h = dg.ops.gelu(x @ W1 + b1)
    scale = g.const(np.float32(0.5), name="scale")
    frozen = g.param("frozen", rng.normal(size=(5,)).astype(np.float32), trainable=False)
    with g.scope("fc2"):
        W2 = g.param("W", rng.normal(size=(5, 3)).astype(np.float32))
        logits = (h * scale + frozen)[:, 1:] @ W2[1:, :]
    loss = dg.softmax_cross_entropy(logits, y, reduction="sum") + dg.mean(dg.softmax(logits, axis=0))
    return g, loss


@pytest.fixture
def saved(tmp_path):
    """``(graph, loss, path)`` of ``small_mlp`` saved to a file."""
    g, loss = small_mlp()
    path = tmp_path / "model.dagrad"
    dg.save(g, path)
    return g, loss, path


def feeds() -> dict:
    rng = np.random.default_rng(1)
    return {"x": rng.normal(size=(6, 4)).astype(np.float32), "y": rng.integers(0, 3, size=6)}


def load_error(path, **options) -> dg.FormatError:
    with pytest.raises(dg.FormatError) as info:
        dg.load(path, **options)
    return info.value


# ------------------------------------------------------------- format 2 --


def parts(path) -> tuple[dict, dict, dict]:
    """``(document, table, arrays by key)`` of a format-2 file, read with the safetensors layout's rules."""
    data = Path(path).read_bytes()
    length = int.from_bytes(data[:8], "little")
    table = json.loads(data[8:8 + length])
    metadata = table.pop("__metadata__")
    body = data[8 + length:]
    codes = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "u1", "BOOL": "?"}
    arrays = {key: np.frombuffer(body[e["data_offsets"][0]:e["data_offsets"][1]], codes[e["dtype"]]).reshape(e["shape"])
              for key, e in table.items()}
    return json.loads(metadata["dagrad"]), table, arrays


def document(path) -> dict:
    return parts(path)[0]


def rewrite(path, dst, document: dict, arrays: dict | None = None) -> Path:
    """A well-formed format-2 file holding ``document`` (any JSON value) and ``arrays`` (default: the original's)."""
    if arrays is None:
        arrays = parts(path)[2]
    with open(dst, "wb") as f:
        container.write(f, {"dagrad": json.dumps(document)}, arrays)
    return Path(dst)


def raw(dst, header, data: bytes = b"", length: int | None = None) -> Path:
    """A file of an 8-byte length (default: the header's), the header (a dict or bytes) and ``data``."""
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    Path(dst).write_bytes(struct.pack("<Q", len(blob) if length is None else length) + blob + data)
    return Path(dst)


# ------------------------------------------------------------- format 1 --


def v1_document(graph: dg.Graph) -> dict:
    """What dagrad 0.1 wrote in graph.json: per-node providers, arrays named after their nodes."""
    reg = dg.registry()
    nodes = []
    for node in graph.nodes():
        rec = {"name": node.name, "op": node.op, "inputs": list(node.inputs), "attrs": node.attrs,
               "shape": None if node.shape is None else list(node.shape), "dtype": node.dtype.name,
               "trainable": bool(node.trainable)}
        if node.kind == "op":
            op = reg.op(node.op)
            info = reg.plugins[op.plugin]
            rec.update(plugin=op.plugin, distribution=info.distribution, version=info.version)
        nodes.append(rec)
    return {"format": "dagrad-model", "format_version": 1, "dagrad_version": "0.1.0", "graph": graph.name,
            "plugins": [], "nodes": nodes}


def npz(members: dict, compress_type=zipfile.ZIP_STORED) -> bytes:
    """An .npz archive: ``{member name: array or raw bytes}``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, value in members.items():
            if isinstance(value, np.ndarray):
                one = io.BytesIO()
                np.lib.format.write_array(one, value, allow_pickle=True)
                value = one.getvalue()
            zf.writestr(name, value, compress_type=compress_type)
    return buf.getvalue()


def v1_file(dst, graph: dg.Graph | None = None, *, document: dict | None = None, params: bytes | None = None,
            members: list | None = None) -> Path:
    """A format-1 zip: from a graph, with its document or params replaced, or from explicit ``members``."""
    if members is None:
        if document is None:
            document = v1_document(graph)
        if params is None:
            params = npz({f"{n.name}.npy": graph.value(n.name) for n in graph.nodes() if n.kind in ("param", "const")})
        members = [("graph.json", json.dumps(document).encode(), zipfile.ZIP_DEFLATED),
                   ("params.npz", params, zipfile.ZIP_STORED)]
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data, method in members:
            zf.writestr(name, data, compress_type=method)
    return Path(dst)


def patch_zip(path, member: str, **fields) -> None:
    """Change a member's header fields in place, in both its local header and the central directory.

    ``flag_bits``, ``compress_type``, ``file_size`` (uncompressed): a hostile
    archive's directory can say anything.
    """
    data = bytearray(Path(path).read_bytes())
    name = member.encode()
    offsets = {"flag_bits": (6, "<H"), "compress_type": (8, "<H"), "file_size": (22, "<I")}
    central = {"flag_bits": (8, "<H"), "compress_type": (10, "<H"), "file_size": (24, "<I")}
    for signature, table, name_at in ((b"PK\x03\x04", offsets, 30), (b"PK\x01\x02", central, 46)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            if data[start + name_at:start + name_at + len(name)] == name:
                for key, value in fields.items():
                    at, fmt = table[key]
                    struct.pack_into(fmt, data, start + at, value)
            start += 4
    Path(path).write_bytes(bytes(data))
