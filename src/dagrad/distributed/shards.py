"""Training data on a Dask cluster: where each example lives, and which task computes which rows.

A data set is cut into *chunks* along the example axis, each chunk a dict
``{input name: rows}`` held by one worker. The chunks are grouped, one group
per worker at the start of the fit, and every step runs one task per group
over that group's rows of the batch. The groups are fixed for the whole fit:
if a worker dies, its chunks are recomputed or sent again and its group's
task runs elsewhere, on the same rows, so a run with a failure computes
exactly what a run without one does.

* numpy arrays are scattered once, *strided*: chunk ``s`` of ``S`` holds
  examples ``s, s + S, s + 2S, ...``, so that every batch, shuffled or not,
  draws evenly on every worker. The client keeps the arrays it was given, and
  sends a chunk again if the worker holding it dies.
* Dask arrays (and Dask dataframes, through ``to_dask_array``) keep their
  chunks along the example axis and never pass through the client: each
  chunk is computed on the worker of its group, and Dask recomputes a lost
  one from its lineage. A batch draws on the workers holding its rows, so
  shuffle (the default) or chunk finely, or an unshuffled batch may fall on
  one worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ..errors import FeedError
from ..train.metrics import _name
from ..train.steps import prepare

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph

__all__ = ["Shards", "distribute", "is_dask_array"]


def is_dask_array(value: Any) -> bool:
    """Whether ``value`` is a Dask array (checked by type, without importing dask for numpy data)."""
    return type(value).__module__.startswith("dask.array") or (
        hasattr(value, "dask") and hasattr(value, "chunks") and hasattr(value, "compute"))


class Strided:
    """Chunk ``s`` of ``parts`` holds examples ``s, s + parts, ...`` (how numpy data is laid out)."""

    def __init__(self, parts: int):
        self.parts = parts

    def locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The chunk of each example and its row within that chunk."""
        return rows % self.parts, rows // self.parts


class Blocks:
    """Chunk ``c`` holds examples ``offsets[c]`` to ``offsets[c + 1] - 1`` (a Dask array's chunks)."""

    def __init__(self, sizes: Sequence[int]):
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        chunk = np.searchsorted(self.offsets, rows, side="right") - 1
        return chunk, rows - self.offsets[chunk]


@dataclass
class Piece:
    """One task's share of a batch: its group, the chunks it reads and its rows in each, how many, and where to run."""

    group: int
    chunks: list
    rows: list
    count: int
    home: Optional[str]


class Shards:
    """A data set on the cluster: one future per chunk, the layout of examples, and the fixed groups of chunks.

    ``restore`` (numpy data only) makes a chunk again on the client, to send
    it once more when the worker holding it has died.
    """

    def __init__(self, client: Any, futures: list, layout: Any, groups: list[list[int]], examples: int,
                 restore: Optional[Callable[[int], dict]] = None, timeout: Optional[float] = None):
        self.client = client
        self.timeout = timeout
        self.futures = futures
        self.layout = layout
        self.groups = groups
        self.examples = examples
        self.restore = restore
        self.homes: list[Optional[str]] = [None] * len(groups)

    def find_homes(self) -> None:
        """Ask the scheduler which worker holds each group's first chunk: the group's tasks are sent there.

        Left to itself, Dask may run two groups' tasks on one worker (it weighs
        the parameters it would move against the chunk), and then keeps both
        chunks there. A home that has died is ignored by the scheduler (the
        tasks go anywhere) until this is asked again.
        """
        from concurrent.futures import CancelledError

        firsts = [self.futures[members[0]] for members in self.groups]
        try:
            held = self.client.who_has([f for f in firsts if f.status == "finished"])
        except CancelledError:  # a chunk lost while asking: the next retry asks again
            held = {}
        self.homes = [min(held[f.key]) if held.get(f.key) else None for f in firsts]

    def pieces(self, rows: np.ndarray) -> list[Piece]:
        """The tasks of a batch: for each group holding some of ``rows``, its chunks and their rows (in batch order)."""
        chunk, local = self.layout.locate(np.asarray(rows))
        out = []
        for g, members in enumerate(self.groups):
            futures, parts = [], []
            for c in members:
                mine = local[chunk == c]
                if len(mine):
                    futures.append(self.futures[c])
                    parts.append(mine)
            if parts:
                out.append(Piece(g, futures, parts, sum(len(p) for p in parts), self.homes[g]))
        return out

    def everything(self) -> list[Piece]:
        """One piece per group with all of its rows (for evaluation)."""
        return [Piece(g, [self.futures[c] for c in members], [], 0, self.homes[g])
                for g, members in enumerate(self.groups)]

    def recover(self) -> int:
        """Send again every chunk the cluster lost (numpy data); Dask recomputes lost chunks of Dask arrays itself.

        The scheduler's record of who holds what decides (a future's own
        status may not have heard of the loss yet). Returns how many chunks
        were sent.
        """
        sent = 0
        for c, future in enumerate(self.futures):
            if self.restore is not None and not self._held(future):
                self.futures[c] = self.client.scatter([self.restore(c)], hash=False, timeout=self.timeout)[0]
                sent += 1
        self.find_homes()
        return sent

    def _held(self, future: Any) -> bool:
        from concurrent.futures import CancelledError

        if future.status != "finished":
            return False
        try:
            return bool(self.client.who_has([future]).get(future.key))
        except CancelledError:  # cancelled between the two looks
            return False

    def release(self) -> None:
        """Let the cluster free the chunks."""
        futures, self.futures = self.futures, []
        for f in futures:
            f.release()


def distribute(client: Any, graph: "Graph", data: Mapping, what: str, workers: Sequence[str], timeout: float) -> Shards:
    """Put ``data`` on the cluster, in chunks grouped over ``workers`` (see the module's docstring).

    ``timeout`` bounds each wait for a worker to take a chunk, in seconds.
    """
    data = {key: _as_array(_name(key), value, what) for key, value in data.items()} if isinstance(data, Mapping) \
        else data
    arrays, n = prepare(graph, data, what, as_array=_keep)
    if not any(is_dask_array(a) for a in arrays.values()):
        return _scatter(client, arrays, n, workers, timeout)
    return _compute(client, arrays, n, workers, timeout)


def _as_array(name: str, value: Any, what: str) -> Any:
    """A Dask array for Dask collections (dataframe columns through ``to_dask_array``), else a numpy array."""
    if hasattr(value, "to_dask_array"):
        value = value.to_dask_array(lengths=True)
    if is_dask_array(value):
        if value.ndim and np.isnan(value.shape[0]):
            raise FeedError(f"{what}: {name!r} is a Dask array of unknown length (its chunk sizes are not known); "
                            "call its compute_chunk_sizes() first, or to_dask_array(lengths=True) for a dataframe")
        return value
    return np.asarray(value)


def _keep(value: Any) -> Any:
    return value


def _scatter(client: Any, arrays: dict, n: int, workers: Sequence[str], timeout: float) -> Shards:
    parts = max(1, min(len(workers), n))

    def chunk(s: int) -> dict:
        return {name: np.ascontiguousarray(a[s::parts]) for name, a in arrays.items()}

    futures = [client.scatter([chunk(s)], workers=[workers[s]], hash=False, timeout=timeout)[0] for s in range(parts)]
    shards = Shards(client, futures, Strided(parts), [[s] for s in range(parts)], n, restore=chunk, timeout=timeout)
    shards.find_homes()
    return shards


def _compute(client: Any, arrays: dict, n: int, workers: Sequence[str], timeout: float) -> Shards:
    import dask
    import dask.array as da
    import distributed

    first = next(a for a in arrays.values() if is_dask_array(a))
    sizes = tuple(int(s) for s in first.chunks[0])
    aligned = {}
    for name, a in arrays.items():
        if not is_dask_array(a):
            a = da.from_array(a, chunks=(sizes,) + tuple(-1 for _ in a.shape[1:]))
        aligned[name] = a.rechunk((sizes,) + tuple(-1 for _ in a.shape[1:]))
    blocks = {name: a.to_delayed().reshape(len(sizes)) for name, a in aligned.items()}
    chunks = [dask.delayed(dict)(**{name: b[c] for name, b in blocks.items()}) for c in range(len(sizes))]
    groups = _balanced(sizes, min(len(workers), len(sizes)))
    futures: list = [None] * len(sizes)
    for g, members in enumerate(groups):
        computed = client.compute([chunks[c] for c in members], workers=[workers[g]], allow_other_workers=True)
        for c, f in zip(members, computed):
            futures[c] = f
    distributed.wait(futures)  # loaded before the first step; an error loading them is raised here
    for f in futures:
        if f.status == "error":
            f.result()
    shards = Shards(client, futures, Blocks(sizes), groups, n, timeout=timeout)
    shards.find_homes()
    return shards


def _balanced(sizes: Sequence[int], groups: int) -> list[list[int]]:
    """Consecutive chunks in ``groups`` groups of about equal numbers of rows (none empty)."""
    total = sum(sizes)
    out: list[list[int]] = [[] for _ in range(groups)]
    done, g = 0, 0
    for c, size in enumerate(sizes):
        wanted = min(groups - 1, int(done * groups / max(total, 1)), g + 1)  # never skip a group
        g = max(g, wanted, groups - (len(sizes) - c))  # enough chunks left for every group still empty
        out[g].append(c)
        done += size
    return out
