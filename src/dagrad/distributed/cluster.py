"""Connecting ``fit`` to a Dask cluster: ``DataParallel`` (a client and how to use it) and ``local_cluster``."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..errors import DagradError

__all__ = ["DataParallel", "local_cluster", "REDUCTIONS", "require_dask"]

REDUCTIONS = ("mean", "sum")


def require_dask(what: str) -> None:
    """Raise a ``DagradError`` saying how to install Dask when ``dask.distributed`` cannot be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise DagradError(f"{what} needs dask.distributed ({exc}): pip install 'dagrad[dask]'") from None


@dataclass
class DataParallel:
    """A Dask client and the settings of data-parallel training on it; pass it as ``fit(..., client=...)``.

    Passing a ``distributed.Client`` itself is the same as
    ``DataParallel(client)`` with the defaults below.

    Parameters
    ----------
    client
        A connected ``distributed.Client``.
    reduction
        How the loss combines the examples of a batch: ``"mean"`` (every
        loss in ``dagrad.nn`` by default) weights each shard's loss and
        gradients by its share of the batch; ``"sum"`` adds them. Terms that
        do not depend on the batch (a weight penalty) are exact with
        ``"mean"``; with ``"sum"`` they would be counted once per shard.
    worker_timeout
        Seconds to wait for a worker while the cluster has none (a nanny
        restarting a crashed worker takes one or two) before giving up with a
        ``ClusterError``.
    retries
        How many times a step is sent again after the cluster lost what it
        needed (a worker died holding a chunk of the data or the step's
        parameters). Tasks on a dying worker are re-run by Dask itself.

    Attributes
    ----------
    stats : dict
        Counted by every ``fit`` given these settings: ``steps`` run on the
        cluster, step ``retries``, chunks ``resent`` after a worker died, and
        the bytes the client ``sent`` (parameters) and ``received`` (summed
        gradients).
    """

    client: Any
    reduction: str = "mean"
    worker_timeout: float = 60.0
    retries: int = 3
    stats: dict = field(default_factory=lambda: {"steps": 0, "retries": 0, "resent": 0, "sent": 0, "received": 0})

    def __post_init__(self) -> None:
        if self.reduction not in REDUCTIONS:
            raise DagradError(f"DataParallel: reduction must be 'mean' or 'sum', not {self.reduction!r}")
        if not self.worker_timeout > 0 or self.retries < 0:
            raise DagradError(f"DataParallel: need worker_timeout > 0 and retries >= 0 "
                              f"(got {self.worker_timeout!r}, {self.retries!r})")
        require_dask("DataParallel")
        from distributed import Client

        if not isinstance(self.client, Client):
            raise DagradError(f"DataParallel: client must be a distributed.Client, not {type(self.client).__name__}; "
                              "connect one with Client('tcp://scheduler:8786'), or use dagrad.distributed.local_cluster()")


@contextlib.contextmanager
def local_cluster(workers: int = 2, *, threads_per_worker: int = 1, **options: Any) -> Iterator[Any]:
    """A Dask ``LocalCluster`` of ``workers`` processes on this machine, and a ``Client`` of it; both closed on exit.

    The cluster listens on 127.0.0.1 only, its HTTP endpoint (the
    dashboard, with bokeh installed: ``client.dashboard_link``) on a free
    port there. Each worker runs
    ``threads_per_worker`` threads under a nanny that restarts it if it
    dies. Other keywords go to ``distributed.LocalCluster``.

    Worker processes are started with ``spawn``, so a script that makes a
    cluster must do so under ``if __name__ == "__main__":``.

    Examples
    --------
    >>> from dagrad.distributed import local_cluster
    >>> with local_cluster(1) as client:                   # doctest: +SKIP
    ...     len(client.nthreads())
    1
    """
    require_dask("local_cluster")
    from distributed import Client, LocalCluster

    settings = {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0", "silence_logs": logging.ERROR, **options}
    cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True, **settings)
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()
