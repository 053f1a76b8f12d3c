"""Data-parallel training on a Dask cluster: ``dg.fit(..., client=client)``.

Give ``fit`` a ``distributed.Client`` (or a ``DataParallel`` holding one, to
change its settings) and every step runs on the cluster: each worker computes
the loss and gradients of its shard of the batch with the graph's compiled
plan, the cluster sums the shards' gradients (weighted by each shard's share
of the batch) with a tree of tasks, and the optimizer steps on the client.
The result equals training in one process with the same batches, seed and
data order, to rounding; progress bar, History, callbacks and checkpoints
work as they do locally.

* The graph reaches each worker once, in dagrad's model-file format, and is
  loaded through ``dagrad.load`` (``worker.py``); workers that join later,
  or that a nanny restarts, get it too.
* ``data`` may hold Dask arrays (chunked along the example axis), which
  never pass through the client; numpy arrays are sent to the workers once
  (``shards.py``).
* A worker dying mid-step costs a retry of that step, not the run; when the
  cluster cannot go on, ``fit`` saves a checkpoint and raises
  ``dagrad.ClusterError`` (``steps.py``).

``docs/distributed.md`` has the measured costs and how to connect to a real
cluster. Needs ``pip install 'dagrad[dask]'``.

Examples
--------
>>> import numpy as np, dagrad as dg
>>> from dagrad.distributed import local_cluster
>>> g = dg.Graph()
>>> x, y = g.input("x", shape=(None, 2)), g.input("y", shape=(None, 1))
>>> loss = dg.nn.mse(dg.nn.dense(x, 1, name="fc"), y)
>>> X = np.random.default_rng(0).normal(size=(64, 2)); Y = X @ [[2.0], [-1.0]]
>>> with local_cluster(2) as client:                                   # doctest: +SKIP
...     history = dg.fit(g, loss, {"x": X, "y": Y}, dg.optim.SGD(g, lr=0.1), epochs=20, batch_size=16,
...                      progress=False, client=client)
"""

from ..errors import ClusterError
from .cluster import DataParallel, local_cluster
from .steps import ClusterSteps, cluster_steps

__all__ = ["DataParallel", "local_cluster", "ClusterError", "ClusterSteps", "cluster_steps"]


def __dir__():  # dir() lists the public names, not the submodules and imports behind them
    return __all__
