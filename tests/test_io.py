"""Model files: ``dg.save`` / ``dg.load`` round-trip exactly and refuse every bad file with a FormatError."""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import dagrad as dg
from dagrad.io import FORMAT_NAME, FORMAT_VERSION


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


def feeds() -> dict:
    rng = np.random.default_rng(1)
    return {"x": rng.normal(size=(6, 4)).astype(np.float32), "y": rng.integers(0, 3, size=6)}


@pytest.fixture
def saved(tmp_path):
    g, loss = small_mlp()
    path = tmp_path / "model.dagrad"
    dg.save(g, path)
    return g, loss, path


def rewrite(src, dst, *, graph=None, params=None, drop=()):
    """Copy a model file, replacing graph.json (a dict or raw bytes) and/or params.npz bytes."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for member in zin.namelist():
            if member in drop:
                continue
            data = zin.read(member)
            if member == "graph.json" and graph is not None:
                data = graph if isinstance(graph, bytes) else json.dumps(graph).encode()
            if member == "params.npz" and params is not None:
                data = params
            zout.writestr(member, data)
    return dst


def document(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("graph.json"))


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def load_error(path) -> str:
    with pytest.raises(dg.FormatError) as info:
        dg.load(path)
    return str(info.value)


# ------------------------------------------------------------ round trip --


def test_round_trip_keeps_structure_names_scopes_and_attrs(saved):
    g, _, path = saved
    h = dg.load(path)
    assert h.name == g.name
    before, after = g.nodes(), h.nodes()
    assert [n.name for n in after] == [n.name for n in before]
    for a, b in zip(before, after):
        assert (b.op, b.inputs, b.attrs, b.shape, b.dtype, b.trainable, b.scope) == (
            a.op, a.inputs, a.attrs, a.shape, a.dtype, a.trainable, a.scope
        ), a.name
    assert h.node("fc1/W").scope == "fc1"
    assert isinstance(h.node("fc2/getitem").attrs["index"], tuple)


def test_round_trip_params_and_consts_are_bit_exact(saved):
    g, _, path = saved
    h = dg.load(path)
    assert set(h.params) == set(g.params) and "frozen" not in h.params
    for name in ["fc1/W", "fc1/b", "fc2/W", "frozen", "scale"]:
        a, b = g.value(name), h.value(name)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes(), name


def test_loaded_graph_computes_identical_forward_and_backward(saved):
    g, loss, path = saved
    h = dg.load(path)
    expected = g.backward(loss, feeds())
    got = h.backward(loss.name, feeds())
    assert got.value(loss.name).tobytes() == expected.value(loss.name).tobytes()
    assert set(got.grads) == set(expected.grads)
    for name, grad in expected.grads.items():
        assert got.grad(name).tobytes() == grad.tobytes(), name
    assert got.order == expected.order


def test_file_records_format_plugins_and_provider_of_each_op(saved):
    _, _, path = saved
    doc = document(path)
    assert doc["format"] == FORMAT_NAME and doc["format_version"] == FORMAT_VERSION
    gelu = next(n for n in doc["nodes"] if n["op"] == "gelu")
    assert (gelu["plugin"], gelu["distribution"]) == ("activations", "dagrad-activations")
    assert gelu["version"] == dg.registry().plugins["activations"].version
    required = {p["name"]: p["distribution"] for p in doc["plugins"]}
    assert required == {"builtins": "dagrad", "activations": "dagrad-activations"}
    assert all("plugin" not in n for n in doc["nodes"] if n["op"] in ("input", "param", "const"))


def test_saved_file_is_a_zip_of_json_and_npz_without_pickles(saved):
    _, _, path = saved
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["graph.json", "params.npz"]
        with np.load(io.BytesIO(zf.read("params.npz")), allow_pickle=False) as npz:
            assert sorted(npz.files) == ["fc1/W", "fc1/b", "fc2/W", "frozen", "scale"]


def test_saving_again_overwrites_and_loads_the_new_values(saved):
    g, _, path = saved
    g.params["fc1/W"][...] = 7
    dg.save(g, str(path))
    assert (dg.load(path).value("fc1/W") == 7).all()


# -------------------------------------------------------- interrupted save --


def test_interrupted_save_leaves_the_old_file_and_no_temp_file(saved, monkeypatch):
    g, _, path = saved
    before = path.read_bytes()
    g.params["fc1/W"][...] = 0

    def fail_midway(*args, **kwargs):
        raise KeyboardInterrupt("simulated interruption while writing parameters")

    monkeypatch.setattr(dg.io.np, "savez", fail_midway)
    with pytest.raises(KeyboardInterrupt):
        dg.save(g, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == ["model.dagrad"]


def test_failing_save_to_a_new_path_leaves_nothing(tmp_path, monkeypatch):
    g, _ = small_mlp()

    def fail_in_zip(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(dg.io.zipfile.ZipFile, "writestr", fail_in_zip)
    with pytest.raises(OSError):
        dg.save(g, tmp_path / "new.dagrad")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------- bad files --


def test_missing_file_is_a_format_error(tmp_path):
    assert "cannot read" in load_error(tmp_path / "nope.dagrad")


def test_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "model.dagrad"
    path.write_text("hello, I am a text file")
    assert "not a zip archive" in load_error(path)


def test_truncated_zip_is_refused(saved, tmp_path):
    _, _, path = saved
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        short = tmp_path / f"short{cut}.dagrad"
        short.write_bytes(data[:cut])
        assert "truncated or damaged" in load_error(short)


def test_foreign_zip_without_graph_json_is_refused(tmp_path):
    path = tmp_path / "foreign.dagrad"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hello.txt", "not a model")
    message = load_error(path)
    assert "no graph.json" in message and "hello.txt" in message


def test_bad_json_is_refused(saved, tmp_path):
    _, _, path = saved
    bad = rewrite(path, tmp_path / "bad.dagrad", graph=b'{"format": "dagrad-model", "nodes": [')
    assert "not valid JSON" in load_error(bad)


def test_unknown_format_name_is_refused(saved, tmp_path):
    _, _, path = saved
    doc = document(path)
    doc["format"] = "keras"
    message = load_error(rewrite(path, tmp_path / "other.dagrad", graph=doc))
    assert "'keras'" in message and FORMAT_NAME in message


def test_newer_format_version_says_which_version_this_dagrad_reads(saved, tmp_path):
    _, _, path = saved
    doc = document(path)
    doc["format_version"] = FORMAT_VERSION + 1
    message = load_error(rewrite(path, tmp_path / "newer.dagrad", graph=doc))
    assert f"format version {FORMAT_VERSION + 1}" in message
    assert f"reads format version {FORMAT_VERSION}" in message


def test_op_from_an_unknown_plugin_names_op_plugin_and_distribution(saved, tmp_path):
    _, _, path = saved
    doc = document(path)
    node = next(n for n in doc["nodes"] if n["op"] == "gelu")
    node.update(op="swishy", plugin="fancy", distribution="dagrad-fancy", version="2.0")
    message = load_error(rewrite(path, tmp_path / "fancy.dagrad", graph=doc))
    assert "'swishy'" in message and "'fancy'" in message and "pip install dagrad-fancy" in message and "version 2.0" in message


def test_loading_without_the_activations_plugin_says_what_to_install(saved):
    _, _, path = saved
    try:
        dg.load_plugins(only=[])
        assert "gelu" not in dg.registry().ops
        message = load_error(path)
    finally:
        dg.load_plugins()
    assert "'gelu'" in message and "'activations'" in message and "pip install dagrad-activations" in message
    assert dg.load(path)  # with the plugin back, the same file loads


def test_cycle_in_the_file_is_refused_listing_its_nodes(saved, tmp_path):
    _, _, path = saved
    doc = document(path)
    nodes = {n["name"]: n for n in doc["nodes"]}
    nodes["fc1/matmul"]["inputs"] = ["x", "fc1/gelu"]  # gelu reads add, add reads matmul
    message = load_error(rewrite(path, tmp_path / "cycle.dagrad", graph=doc))
    assert "cycle" in message
    for name in ("fc1/matmul", "fc1/add", "fc1/gelu"):
        assert name in message


def test_input_naming_a_node_not_in_the_file_is_refused(saved, tmp_path):
    _, _, path = saved
    doc = document(path)
    doc["nodes"][-1]["inputs"][0] = "ghost"
    assert "'ghost'" in load_error(rewrite(path, tmp_path / "ghost.dagrad", graph=doc))


def test_pickle_payload_in_params_is_refused_not_executed(saved, tmp_path):
    _, _, path = saved
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    payload = pickle.dumps(Payload())
    assert not marker.exists()
    message = load_error(rewrite(path, tmp_path / "evil.dagrad", params=payload))
    assert "pickle" in message
    assert not marker.exists()


def test_object_array_with_pickle_payload_inside_npz_is_refused_not_executed(saved, tmp_path):
    _, _, path = saved
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    arrays = {name: np.load(io.BytesIO(zipfile.ZipFile(path).read("params.npz")))[name]
              for name in ["fc1/b", "fc2/W", "frozen", "scale"]}
    evil = np.empty(1, dtype=object)
    evil[0] = Payload()
    params = npz_bytes(**arrays, **{"fc1/W": evil})
    message = load_error(rewrite(path, tmp_path / "evil.dagrad", params=params))
    assert "pickle" in message or "object" in message
    assert not marker.exists()


def test_missing_param_array_is_refused(saved, tmp_path):
    _, _, path = saved
    params = npz_bytes(**{"fc1/b": np.zeros(5, np.float32)})
    message = load_error(rewrite(path, tmp_path / "missing.dagrad", params=params))
    assert "no array for param 'fc1/W'" in message


def test_missing_params_member_is_refused(saved, tmp_path):
    _, _, path = saved
    assert "no params.npz" in load_error(rewrite(path, tmp_path / "nop.dagrad", drop=("params.npz",)))


def _params_of(path) -> dict:
    with np.load(io.BytesIO(zipfile.ZipFile(path).read("params.npz"))) as npz:
        return {k: npz[k] for k in npz.files}


def test_param_of_the_wrong_shape_is_refused(saved, tmp_path):
    _, _, path = saved
    arrays = _params_of(path)
    arrays["fc1/W"] = np.zeros((4, 6), np.float32)
    message = load_error(rewrite(path, tmp_path / "shape.dagrad", params=npz_bytes(**arrays)))
    assert "'fc1/W'" in message and "[4, 5]" in message and "[4, 6]" in message


def test_param_of_the_wrong_dtype_is_refused(saved, tmp_path):
    _, _, path = saved
    arrays = _params_of(path)
    arrays["fc1/W"] = arrays["fc1/W"].astype(np.float64)
    message = load_error(rewrite(path, tmp_path / "dtype.dagrad", params=npz_bytes(**arrays)))
    assert "'fc1/W'" in message and "float32" in message and "float64" in message


def test_recorded_shape_that_the_ops_do_not_produce_is_refused(saved, tmp_path):
    _, _, path = saved
    doc = document(path)
    node = next(n for n in doc["nodes"] if n["name"] == "fc1/matmul")
    node["shape"] = [None, 7]
    message = load_error(rewrite(path, tmp_path / "lying.dagrad", graph=doc))
    assert "'fc1/matmul'" in message and "rebuilding" in message


def test_bad_attrs_are_refused_naming_the_node(saved, tmp_path):
    _, _, path = saved
    doc = document(path)
    node = next(n for n in doc["nodes"] if n["op"] == "softmax")
    node["attrs"]["temperature"] = 2
    message = load_error(rewrite(path, tmp_path / "attrs.dagrad", graph=doc))
    assert node["name"] in message and "temperature" in message


def test_rewired_graph_whose_insertion_order_is_not_topological_loads(tmp_path):
    g = dg.Graph()
    x = g.input("x", shape=None)
    early = dg.tanh(x)
    late = dg.exp(x)
    g.rewire(early, 0, late)  # "tanh" (added first) now reads "exp" (added later)
    dg.save(g, tmp_path / "rewired.dagrad")
    h = dg.load(tmp_path / "rewired.dagrad")
    assert h.node("tanh").inputs == ("exp",) and h.node("x").shape is None
    value = np.array([0.5, -1.0])
    assert np.array_equal(h.forward([early.name], {"x": value}).value("tanh"), np.tanh(np.exp(value)))


def test_a_saved_model_is_readable_like_any_file_the_user_writes(tmp_path):
    g = dg.Graph()
    g.param("w", [1.0])
    path = tmp_path / "shared.dagrad"
    dg.save(g, path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's owner-only 0600
