"""The exception hierarchy: every error a user can cause is a ``DagradError``.

Each message names the node, op or plugin at fault and says what was expected
versus what was found, so that a user never has to read a numpy traceback to
learn which part of their graph is wrong.
"""

from __future__ import annotations

__all__ = [
    "DagradError",
    "GraphError",
    "CycleError",
    "SymbolicTensorError",
    "ShapeError",
    "FeedError",
    "PluginError",
    "OpError",
    "GradientError",
    "HigherOrderError",
    "AnomalyError",
    "NonFiniteError",
    "FormatError",
    "RenderError",
    "ClusterError",
    "PluginWarning",
]


class DagradError(Exception):
    """Base class of every error dagrad raises because of its input."""

    def __reduce__(self):
        # Errors cross processes (Dask workers, multiprocessing) by pickling, which by default calls the class
        # with self.args alone; subclasses taking more arguments (node, phase, step) would fail to unpickle.
        return _rebuild, (type(self), self.args), self.__dict__


def _rebuild(cls: type, args: tuple) -> "DagradError":
    """An error of class ``cls`` with ``args``, without calling its ``__init__`` (pickle then restores its attributes)."""
    error = cls.__new__(cls)
    error.args = args
    return error


class GraphError(DagradError):
    """A graph is malformed: unknown op, wrong arity, duplicate or missing node."""


class CycleError(GraphError):
    """A graph contains a cycle; ``cycle`` lists the node names on it, in order."""

    def __init__(self, message: str, cycle: list[str]):
        super().__init__(message)
        self.cycle = cycle


class SymbolicTensorError(DagradError, TypeError):
    """A symbolic ``Tensor`` was used where a value is needed: ``if t:``, ``float(t)``, ``np.exp(t)``.

    A Tensor has no value until its graph runs; the message says which dagrad
    op or ``Result`` method to use instead. Also a ``TypeError``, which is what
    Python and numpy raise for a value that cannot be converted.
    """


class ShapeError(GraphError):
    """Shapes or dtypes of a node's inputs do not fit its op."""


class FeedError(DagradError):
    """A feed is missing, unexpected, or of the wrong shape or dtype."""


class PluginError(DagradError):
    """A plugin failed to load, or two plugins define the same op."""


class OpError(DagradError):
    """An op raised while running; the original exception is ``__cause__``."""


class GradientError(DagradError):
    """A VJP returned the wrong number, shape or dtype of gradients."""


class HigherOrderError(GradientError):
    """A gradient cannot be differentiated again: an op on its path has no graph VJP.

    ``dagrad.grad`` differentiates such an op once by running its numpy VJP as a
    node; differentiating that node again needs the op's ``@<op>.graph_vjp``.
    """


class AnomalyError(DagradError):
    """With anomaly checking on, a node produced NaN or Inf."""

    def __init__(self, message: str, node: str, phase: str):
        super().__init__(message)
        self.node = node
        self.phase = phase


class NonFiniteError(AnomalyError):
    """Training met a NaN or Inf loss or gradient; ``node`` is the loss or parameter, ``step`` the step.

    Optimizers and ``fit`` raise it before changing any parameter, unless told
    to skip such steps (``on_nonfinite="skip"``).
    """

    def __init__(self, message: str, node: str, phase: str, step: int):
        super().__init__(message, node, phase)
        self.step = step


class FormatError(DagradError):
    """A model file is damaged, foreign, too new, hostile, or needs a missing plugin.

    ``path`` is the file and ``part`` the part of it that is wrong (``"header"``,
    ``"node 'fc1/W'"``...), when known; both are also in the message.
    """

    def __init__(self, message: str, *, path: "str | None" = None, part: "str | None" = None):
        super().__init__(message)
        self.path = path
        self.part = part


class RenderError(DagradError):
    """A diagram cannot be produced (for example, Graphviz is not installed)."""


class ClusterError(DagradError):
    """A Dask cluster cannot go on with a distributed ``fit``: no workers, lost data, or the scheduler gone.

    ``fit`` saves the last finished step before raising it; ``checkpoint`` is
    that file's path (``None`` if it could not be written), to continue with
    ``fit(..., resume=checkpoint)`` on another cluster or in one process.
    """

    def __init__(self, message: str, *, checkpoint: "str | None" = None):
        super().__init__(message)
        self.checkpoint = checkpoint


class PluginWarning(UserWarning):
    """A plugin loaded, but one of its ops cannot be used (two plugins define it, or it clashes with a built-in)."""
