"""Imports point one way: each module imports only from its own layer or below (module level or inside functions).

The layers, bottom to top, are listed in ``LAYER``; ``ALLOWED`` names the only
upward imports, the notebook display hooks, which import the renderer lazily
when a notebook asks a Graph or Result to show itself. A new module must be
given a layer here, which is the point: its place in the architecture is a
decision, written down.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "dagrad"

# Layer of each module (dotted path under dagrad); a package entry covers its submodules
# unless a submodule has its own entry. Sub-layers (4.1, 4.2...) order the IR's modules.
LAYER = {
    # L0 foundations: import nothing from dagrad above them
    "errors": 0, "shapes": 0, "files": 0, "hookspecs": 0, "_version": 0, "index": 0, "data": 0,
    "render.escape": 0, "render.summary": 0, "testing.diagnose": 0, "optim.schedules": 0, "nn.init": 0,
    "interrupts": 0,
    # L1 the op model and the symbolic handle
    "tensor": 1.0, "opdef": 1.1,
    # L2 the built-in op library (the plugin named "builtins")
    "ops.samples": 2.0, "ops.presets": 2.1, "ops": 2.2,
    # L3 the registry, and what op authors import
    # ops.fallback (the op that runs another op's numpy VJP) looks ops up when it runs, and the
    # built-in plugin module, which the registry loads by name, lists it with the other ops
    "plugins": 3.0, "ops.fallback": 3.01, "ops.plugin": 3.02, "ops.__init__": 3.1, "extend": 3.2, "_compat": 3.3,
    # L4 intermediate representation and execution
    "node": 4.0, "result": 4.1, "scheduler": 4.2, "graph": 4.3, "functions": 4.4, "linalg": 4.4,
    # L5 built on the engine
    "gradcheck": 5, "io": 5, "nn": 5, "optim": 5, "checkpoint": 5, "autodiff": 5,
    # L6 presentation (render.plots imports matplotlib only when a plot is asked for)
    "render": 6, "render.viewer": 6, "render.plots": 6,
    # L7 loops and tools
    "train": 7, "train.progress": 7, "testing": 7, "scaffold": 7, "cli": 7,
    # the cluster step executor: fit imports it lazily when given a client, and it uses train's helpers
    "distributed": 7,
    # L8 the facade
    "__init__": 8,
}

# (importer, imported) pairs allowed to point up, each with its reason.
ALLOWED = {
    ("graph", "render"): "Graph._repr_mimebundle_: notebook display",
    ("result", "render"): "Result._repr_mimebundle_: notebook display",
}


def layer_key(module: str) -> str:
    """The most specific LAYER entry for a dotted module path (``render.diagram`` -> ``render``)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in LAYER:
            return key
    raise KeyError(module)


def modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if parts == ["__init__"]:
            name, package = "__init__", []
        elif parts[-1] == "__init__":
            name, package = ".".join(parts[:-1]) + (".__init__" if ".".join(parts[:-1]) + ".__init__" in LAYER else ""), parts[:-1]
        else:
            name, package = ".".join(parts), parts[:-1]
        yield path, name.rstrip("."), package


def dagrad_imports():
    """(module, imported module, line) for every import of a dagrad module, at any depth, skipping TYPE_CHECKING."""
    for path, name, package in modules():
        tree = ast.parse(path.read_text())
        skip = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip.update(id(n) for n in ast.walk(node))
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                    target = base + (node.module.split(".") if node.module else [])
                else:
                    if not (node.module or "").startswith("dagrad"):
                        continue
                    target = node.module.split(".")[1:]
                for alias in node.names:
                    # "from . import ops" imports the submodule ops; "from .x import y" imports x
                    candidate = ".".join(target + [alias.name])
                    full = candidate if _is_module(candidate) else ".".join(target)
                    yield name, full or "__init__", node.lineno
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("dagrad."):
                        yield name, alias.name.split(".", 1)[1], node.lineno


def _is_module(dotted: str) -> bool:
    path = SRC.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _level(module: str) -> float:
    if module == "ops":  # importing the package runs ops/__init__.py, the registry-backed lookup
        return LAYER["ops.__init__"]
    return LAYER[layer_key(module)]


def test_every_module_has_a_layer():
    missing = [name for _, name, _ in modules() if _missing(name)]
    assert not missing, f"give these modules a layer in tests/test_layers.py: {missing}"


def _missing(name: str) -> bool:
    try:
        layer_key(name)
    except KeyError:
        return True
    return False


def test_every_import_points_down_or_sideways():
    upward = []
    for module, imported, line in dagrad_imports():
        if module == imported or imported.startswith(module + ".") or (module, layer_key(imported)) in ALLOWED:
            continue
        if _level(imported) > _level(module):
            upward.append(f"{module}:{line} imports {imported} (layer {_level(imported)} > {_level(module)})")
    assert not upward, "imports pointing up a layer:\n" + "\n".join(upward)


def test_the_layer_check_catches_an_upward_import(tmp_path, monkeypatch):
    assert _level("graph") > _level("opdef")                        # opdef importing graph would be caught
    assert ("opdef", "graph") not in ALLOWED


def test_no_module_imports_itself_in_a_circle():
    """Within a layer imports may go sideways, but never round: the import graph, display hooks aside, is a DAG."""
    import networkx as nx

    imports = nx.DiGraph()
    for module, imported, line in dagrad_imports():
        if module != imported and (module, layer_key(imported)) not in ALLOWED:
            imports.add_edge(module, imported, line=line)
    circles = [sorted(c) for c in nx.strongly_connected_components(imports) if len(c) > 1]
    assert not circles, "modules importing each other in a circle: " + "; ".join(
        " -> ".join(c) for c in circles)
