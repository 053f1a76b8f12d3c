"""Model files: ``dg.save`` / ``dg.load`` round-trip exactly, never lose data, and write whole files or none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dagrad as dg
from dagrad.files import temporary_files
from dagrad.io import FORMAT_NAME, FORMAT_VERSION
from modelfiles import document, feeds, load_error, parts, saved, small_mlp, v1_file  # noqa: F401 (saved: a fixture)


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
    assert isinstance(h.node("fc2/getitem").attrs["index"], tuple)


def test_round_trip_params_and_consts_are_bit_exact(saved):
    g, _, path = saved
    h = dg.load(path)
    assert set(h.params) == set(g.params) and "frozen" not in h.params
    for name in ["fc1/W", "fc1/b", "fc2/W", "frozen", "scale"]:
        a, b = g.value(name), h.value(name)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), name


def test_loaded_graph_computes_identical_forward_and_backward(saved):
    g, loss, path = saved
    h = dg.load(path)
    expected, got = g.backward(loss, feeds()), h.backward(loss.name, feeds())
    assert got.value(loss.name).tobytes() == expected.value(loss.name).tobytes()
    assert set(got.grads) == set(expected.grads)
    for name, grad in expected.grads.items():
        assert got.grad(name).tobytes() == grad.tobytes(), name


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int8", "uint16", "int64", "bool",
                                   "complex64", "complex128", ">f4", ">i8", "longdouble"])
def test_every_numeric_dtype_round_trips_bit_exactly(tmp_path, dtype):
    value = (np.arange(6).reshape(2, 3) * 3 - 5).astype(dtype)
    if value.dtype.kind == "c":
        value = value + 1j * value[::-1]
    g = dg.Graph()
    g.param("p", value, trainable=False)
    g.const(value[0, 0], name="scalar")
    dg.save(g, tmp_path / "d.dagrad")
    h = dg.load(tmp_path / "d.dagrad")
    for name in ("p", "scalar"):
        assert h.value(name).dtype == g.value(name).dtype and h.value(name).shape == g.value(name).shape
        assert h.value(name).tobytes() == g.value(name).tobytes()


def test_file_records_format_and_the_provider_of_each_op(saved):
    _, _, path = saved
    doc = document(path)
    assert doc["format"] == FORMAT_NAME and doc["format_version"] == 2 and FORMAT_VERSION == 3  # 3 only for state updates
    assert doc["ops"]["gelu"]["plugin"] == "activations"
    assert doc["ops"]["gelu"]["distribution"] == "dagrad-activations"
    assert doc["ops"]["gelu"]["version"] == dg.registry().plugins["activations"].version
    assert doc["ops"]["matmul"] == {"plugin": "builtins", "distribution": "dagrad", "version": dg.__version__}


def test_arrays_are_stored_under_keys_dagrad_chooses_with_the_name_map_in_the_document(saved):
    _, _, path = saved
    doc, table, _ = parts(path)
    mapping = {n["name"]: n["array"] for n in doc["nodes"] if "array" in n}
    assert mapping == {"fc1/W": "values/0", "fc1/b": "values/1", "scale": "values/2", "frozen": "values/3",
                       "fc2/W": "values/4"}
    assert set(table) == set(mapping.values())


def test_safetensors_reads_dagrad_files_and_their_name_map(saved):
    st = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    g, _, path = saved
    arrays = st.load_file(str(path))
    with safe_open(str(path), framework="numpy") as f:
        doc = __import__("json").loads(f.metadata()["dagrad"])
    by_name = {n["name"]: arrays[n["array"]] for n in doc["nodes"] if "array" in n}
    for name, value in by_name.items():
        assert value.tobytes() == g.value(name).tobytes(), name


def test_dagrad_reads_arrays_laid_out_by_the_safetensors_package(saved, tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    g, _, path = saved
    doc, _, arrays = parts(path)
    arrays = {k: v.copy() for k, v in arrays.items()}
    other = tmp_path / "by-safetensors.dagrad"
    st.save_file(arrays, str(other), metadata={"dagrad": __import__("json").dumps(doc)})
    h = dg.load(other)
    assert all(h.value(n).tobytes() == g.value(n).tobytes() for n in ("fc1/W", "scale", "frozen"))


def test_safetensors_refuses_what_dagrad_refuses_a_header_longer_than_the_file(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    from modelfiles import raw

    bad = raw(tmp_path / "bad.dagrad", {"__metadata__": {}}, length=3 * 2**30)
    with pytest.raises(Exception):
        st.load_file(str(bad))
    assert "header" in str(load_error(bad))


# ------------------------------------------------------- item 1: names --


@pytest.mark.parametrize("names", [("W", "W.npy"), ("allow_pickle", "file"), ("values/0", "__metadata__"),
                                   ("a", "a.npy.npy")])
def test_names_that_confused_npz_or_could_confuse_the_container_round_trip(tmp_path, names):
    g = dg.Graph()
    for i, name in enumerate(names):
        g.param(name, np.full(3, float(i + 1)))
    dg.save(g, tmp_path / "n.dagrad")
    h = dg.load(tmp_path / "n.dagrad")
    for i, name in enumerate(names):
        assert (h.value(name) == i + 1).all(), name


# ----------------------------------------- items 2, 3: nothing unsaveable --


@pytest.mark.parametrize("name", ["a\x00b", "x" * 70_000, "lone \ud800 surrogate", "new\nline", "\x1b[2J"])
def test_names_a_file_cannot_hold_are_refused_when_the_node_is_added(name):
    g = dg.Graph()
    with pytest.raises(dg.GraphError):
        g.param(name, [1.0])
    with pytest.raises(dg.GraphError):
        g.input(name)
    assert len(g) == 0


def test_object_arrays_are_refused_when_added_so_no_file_holds_one():
    g = dg.Graph()
    with pytest.raises(dg.DagradError, match="not numeric"):
        g.param("w", np.array([object()], dtype=object), trainable=False)
    with pytest.raises(dg.DagradError, match="not numeric"):
        g.const(np.array(["text"]), name="s")
    assert len(g) == 0


@pytest.mark.parametrize("dtype", ["object", "O", "|O", "<U5", "V8", "(2,)f8", "[('a', '<f8')]", "M8[s]"])
def test_a_file_declaring_a_non_numeric_dtype_is_refused(saved, tmp_path, dtype):
    from modelfiles import rewrite

    _, _, path = saved
    doc = document(path)
    next(n for n in doc["nodes"] if n["name"] == "scale")["dtype"] = dtype
    error = load_error(rewrite(path, tmp_path / "o.dagrad", doc))
    assert "'scale'" in str(error) and "numbers only" in str(error)


# ------------------------------------------- item 4: atomic, leftovers --


def test_saving_again_overwrites_and_loads_the_new_values(saved):
    g, _, path = saved
    g.params["fc1/W"][...] = 7
    dg.save(g, str(path))
    assert (dg.load(path).value("fc1/W") == 7).all()


def test_interrupted_save_leaves_the_old_file_and_no_temp_file(saved, monkeypatch):
    g, _, path = saved
    before = path.read_bytes()
    g.params["fc1/W"][...] = 0

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("simulated interruption while writing parameters")

    monkeypatch.setattr(dg.io.container, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        dg.save(g, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == ["model.dagrad"]


def test_a_save_killed_outright_leaves_a_temp_file_that_the_next_save_removes(saved):
    g, _, path = saved
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from dagrad.files import atomic_write
        with atomic_write({str(path)!r}) as f:
            f.write(b"x" * 100_000)
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        assert len(temporary_files(path)) == 1
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert len(temporary_files(path)) == 1  # SIGKILL gave it no chance to clean up
    dg.save(g, path)
    assert temporary_files(path) == []
    assert dg.load(path).value("fc1/W").shape == (4, 5)


def test_a_temp_file_of_a_save_in_progress_is_left_alone(saved):
    import fcntl

    g, _, path = saved
    busy = path.parent / f".{path.name}.busy.tmp"
    with open(busy, "wb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # what a save in progress in another process holds
        dg.save(g, path)
        assert busy.exists()
    dg.save(g, path)
    assert not busy.exists()


def test_resaving_keeps_the_file_mode(saved):
    g, _, path = saved
    os.chmod(path, 0o640)
    dg.save(g, path)
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_new_file_is_readable_like_any_file_the_user_writes(tmp_path):
    g = dg.Graph()
    g.param("w", [1.0])
    path = tmp_path / "shared.dagrad"
    dg.save(g, path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's owner-only 0600


def test_saving_through_a_symlink_writes_its_target_and_keeps_the_link(saved, tmp_path):
    g, _, path = saved
    link = tmp_path / "latest.dagrad"
    link.symlink_to(path)
    g.params["fc1/b"][...] = 3
    dg.save(g, link)
    assert link.is_symlink() and os.readlink(link) == str(path)
    assert (dg.load(path).value("fc1/b") == 3).all()


def test_failing_save_to_a_new_path_leaves_nothing(tmp_path, monkeypatch):
    g, _ = small_mlp()

    def disk_full(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(dg.io.container, "write", disk_full)
    with pytest.raises(OSError):
        dg.save(g, tmp_path / "new.dagrad")
    assert os.listdir(tmp_path) == []


def test_a_graph_too_large_for_the_header_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(dg.io.container, "MAX_HEADER_BYTES", 500)
    g, _ = small_mlp()
    with pytest.raises(dg.FormatError, match="header"):
        dg.save(g, tmp_path / "big.dagrad")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------- format 1 files --


def test_files_written_by_dagrad_0_1_still_load(tmp_path):
    g, loss = small_mlp()
    old = v1_file(tmp_path / "old.dagrad", g)
    h = dg.load(old)
    assert [n.name for n in h.nodes()] == [n.name for n in g.nodes()]
    assert h.value("fc1/W").tobytes() == g.value("fc1/W").tobytes()
    assert h.backward(loss.name, feeds()).value(loss.name) == g.backward(loss, feeds()).value(loss)


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

