"""Normalization with PyTorch's functional signatures (``layer_norm``, ``group_norm``, ``rms_norm``,
``batch_norm``), and the running-statistics updates batch normalization records in the graph.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np

from ..errors import GraphError
from ..tensor import Tensor, apply
from .common import optional_inputs

__all__ = ["layer_norm", "group_norm", "rms_norm", "batch_norm"]


def _scaled(op_name: str, x: Tensor, weight: Any, bias: Any, name: Optional[str], **attrs: Any) -> Tensor:
    """A normalization op whose optional inputs are a weight and then a bias; a bias alone is added after it."""
    if weight is None and bias is not None:
        return apply(op_name, x, **attrs) + bias
    return apply(op_name, x, *optional_inputs(weight, bias), name=name, **attrs)


def _sizes(normalized_shape: Union[int, Sequence[int]]) -> tuple:
    return (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)


def layer_norm(x: Tensor, normalized_shape: Union[int, Sequence[int]], weight: Any = None, bias: Any = None,
               eps: float = 1e-5, *, name: Optional[str] = None) -> Tensor:
    """Normalize over the trailing axes ``normalized_shape`` (mean 0, variance 1), then scale and shift."""
    return _scaled("layer_norm", x, weight, bias, name, normalized_shape=_sizes(normalized_shape), eps=eps)


def group_norm(x: Tensor, num_groups: int, weight: Any = None, bias: Any = None, eps: float = 1e-5, *,
               name: Optional[str] = None) -> Tensor:
    """Normalize each group of channels (axis 1) of each example of ``(N, C, ...)``, then scale and shift per channel."""
    return _scaled("group_norm", x, weight, bias, name, num_groups=int(num_groups), eps=eps)


def rms_norm(x: Tensor, normalized_shape: Union[int, Sequence[int]], weight: Any = None, eps: Optional[float] = None,
             *, name: Optional[str] = None) -> Tensor:
    """Divide by the root mean square over the trailing axes ``normalized_shape``, then scale by ``weight``."""
    return apply("rms_norm", x, *optional_inputs(weight), normalized_shape=_sizes(normalized_shape), eps=eps, name=name)


def batch_norm(x: Tensor, running_mean: Any, running_var: Any, weight: Any = None, bias: Any = None,
               training: Any = False, momentum: Optional[float] = 0.1, eps: float = 1e-5, *,
               num_batches_tracked: Optional[Tensor] = None, name: Optional[str] = None) -> Tensor:
    """Batch normalization of the channels (axis 1) of ``x``, and the updates of its running statistics.

    ``training`` is a scalar input Tensor (0 evaluates, as ``dropout``'s) or a
    Python bool. While training, each channel is normalized with the batch's
    statistics and, as PyTorch's ``F.batch_norm`` does in place, the running
    statistics move toward them by ``momentum``: here ``running_mean`` and
    ``running_var`` must be non-trainable params, and the graph records their
    next values as state updates (``Graph.add_update``) that ``fit`` applies
    after every step. ``momentum=None`` averages all batches so far, counted by
    the int64 param ``num_batches_tracked``; ``momentum=0`` leaves them alone.
    Without running statistics (``None``) the batch's are always used.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x, training = g.input("x", shape=(None, 2)), g.input("training", shape=())
    >>> mean = g.param("mean", np.zeros(2), trainable=False)
    >>> var = g.param("var", np.ones(2), trainable=False)
    >>> y = dg.batch_norm(x, mean, var, training=training)
    >>> sorted(g.updates)
    ['mean', 'var']
    >>> X = np.array([[1.0, 10.0], [3.0, 30.0]])
    >>> g.updates["mean"]
    'next/mean'
    >>> res = g.forward([y, "next/mean"], {"x": X, "training": 1})
    >>> res.value(y).round(4)
    array([[-1., -1.],
           [ 1.,  1.]])
    >>> res.value("next/mean")                        # 0.9 * 0 + 0.1 * the batch mean
    array([0.2, 2. ])
    """
    graph = x.graph
    affine = optional_inputs(weight, bias) if weight is not None else []
    with graph.atomic():
        if running_mean is None or running_var is None:
            if running_mean is not None or running_var is not None:
                raise GraphError("batch_norm: give both running_mean and running_var, or neither")
            if training is False:
                raise GraphError("batch_norm without running statistics uses the batch's: training cannot be False")
            channels = x.shape[1] if x.shape is not None and len(x.shape) > 1 else None
            if channels is None:
                raise GraphError(f"batch_norm without running statistics needs a known channel count (axis 1 of "
                                 f"{x.name!r}, shape {x.shape})")
            dtype = x.dtype if x.dtype.kind == "f" else np.dtype("float64")
            out = apply("batch_norm", x, np.zeros(channels, dtype), np.ones(channels, dtype), 1, *affine, eps=eps,
                        name=name)
        else:
            flag = training if isinstance(training, Tensor) else int(bool(training))
            out = apply("batch_norm", x, running_mean, running_var, flag, *affine, eps=eps, name=name)
            if (isinstance(training, Tensor) or training) and momentum != 0:
                _update_running(x, running_mean, running_var, flag, momentum, num_batches_tracked)
        if weight is None and bias is not None:
            out = out + bias
    return out


def _update_running(x: Tensor, running_mean: Any, running_var: Any, training: Any, momentum: Optional[float],
                    count: Optional[Tensor]) -> None:
    """Record the next running mean and variance (and batch count) as state updates of the graph."""
    graph = x.graph
    for what, param in (("running_mean", running_mean), ("running_var", running_var)):
        if not isinstance(param, Tensor) or param.op != "param" or param.node.trainable:
            raise GraphError(
                f"batch_norm: {what} must be a non-trainable param (g.param(..., trainable=False)) so that training "
                f"can update it, not {getattr(param, 'name', param)!r}; pass momentum=0 to keep it fixed")
    if momentum is None and (not isinstance(count, Tensor) or count.dtype.kind not in "iu"):
        raise GraphError("batch_norm: momentum=None (a cumulative average) needs num_batches_tracked, an integer "
                         "non-trainable param counting the batches seen")
    counted = [count] if momentum is None else []
    stems = [t.name.rpartition("/")[2] for t in (running_mean, running_var, *counted)]
    distinct = len(set(stems)) == len(stems)
    with graph.scope(graph.unused_scope("next")):  # bn/next/running_mean: each state's next value
        for statistic, param, stem in (("mean", running_mean, stems[0]), ("var", running_var, stems[1])):
            new = apply("batch_norm_update", param, x, training, *counted, statistic=statistic, momentum=momentum,
                        name=stem if distinct else None)
            graph.add_update(param, new)
        if momentum is None:
            step = apply("astype", apply("not_equal", training, 0), dtype=count.dtype.name)
            graph.add_update(count, apply("add", count, step, name=stems[2] if distinct else None))
