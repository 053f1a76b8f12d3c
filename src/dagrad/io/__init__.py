"""Model files: save a graph with its parameters to one ``.dagrad`` file, and load it back safely.

A model file is a safetensors file: the parameter and constant arrays, and in
its header's ``__metadata__["dagrad"]`` a JSON document describing the graph
(see ``docs/files.md`` for the format, its limits, and what loading an
untrusted file guarantees). Loading never unpickles and never runs code from
the file, reads only regular files, checks every size the file declares
before allocating anything, so memory stays bounded by the file's size, and
reports anything wrong as one ``FormatError`` naming the file and the part.
Saving is atomic: an interrupted save leaves the previous file as it was.

Files written by dagrad 0.1 (format 1: a zip of ``graph.json`` and
``params.npz``) are still read, with the same guarantees.

Examples
--------
>>> import os, tempfile, numpy as np, dagrad as dg
>>> g = dg.Graph("tiny")
>>> x = g.input("x", shape=(None, 2))
>>> with g.scope("fc"):
...     y = x @ g.param("W", np.eye(2))
>>> path = os.path.join(tempfile.mkdtemp(), "tiny.dagrad")
>>> dg.save(g, path)
>>> h = dg.load(path)
>>> [n.name for n in h.nodes()]
['x', 'fc/W', 'fc/matmul']
>>> h.value("fc/W")
array([[1., 0.],
       [0., 1.]])
"""

from __future__ import annotations

from .container import MAX_HEADER_BYTES
from .model import DEFAULT_MAX_NODES, FORMAT_NAME, FORMAT_VERSION, ModelFile, ProviderWarning
from .reading import load, read_model
from .writing import save, write_model

__all__ = [
    "save", "load", "FORMAT_NAME", "FORMAT_VERSION", "DEFAULT_MAX_NODES", "MAX_HEADER_BYTES", "ProviderWarning",
    "ModelFile", "write_model", "read_model",
]


def __dir__():  # dir() lists the public names, not the submodules and imports behind them
    return __all__
