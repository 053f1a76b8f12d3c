"""``Op``: what an operation is — a numpy forward, a numpy VJP and an optional shape rule.

An op knows nothing of graphs. Its forward maps arrays to an array; its VJP
maps the output gradient back to one gradient per input (``None`` where an
input has none). The engine, not the op, sums a gradient back to its input's
shape after broadcasting, so an op author writes the natural numpy code::

    @op(shape=elementwise)
    def mul(x, y):
        "Elementwise product."
        return x * y

    @mul.vjp
    def _(g, x, y, out):
        return g * y, g * x

    @mul.graph_vjp
    def _(g, x, y):
        return g * y, g * x          # the same maths, on Tensors: it adds nodes

The numpy VJP is the fast path of ``Graph.backward``; the optional graph VJP,
written with dagrad ops on Tensors, is what ``dagrad.grad`` uses to add the
backward pass to the graph as nodes that can be differentiated again.

Positional parameters of the forward are the op's inputs (``*xs`` makes it
variadic); keyword-only parameters are its attributes, which must be static
and JSON-serialisable.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .shapes import Shape
from .tensor import Tensor, apply

__all__ = ["Op", "op", "Sample", "float_dtype", "first_dtype", "bool_dtype", "result_dtype", "ufunc_dtype",
           "ops_in"]


@dataclass
class Sample:
    """One set of example inputs for checking an op against finite differences.

    ``args`` are numpy arrays (the same array object passed twice is one node
    used twice, as in ``x * x``); ``attrs`` are the op's attributes.
    """

    args: tuple
    attrs: dict = field(default_factory=dict)
    label: str = ""


def _numeric(dtypes) -> None:
    for d in dtypes:
        if np.dtype(d).kind not in "biufc":
            raise TypeError(f"{np.dtype(d)} is not a numeric dtype")


def result_dtype(*dtypes: np.dtype, **attrs) -> np.dtype:
    """Default dtype rule: numpy's promotion of the input dtypes, which must be numeric."""
    _numeric(dtypes)
    return np.result_type(*dtypes) if dtypes else np.dtype("float64")


def float_dtype(*dtypes: np.dtype, **attrs) -> np.dtype:
    """Dtype rule of a transcendental op: promoted, and float64 for integer inputs."""
    _numeric(dtypes)
    dtype = np.result_type(*dtypes)
    return dtype if dtype.kind in "fc" else np.dtype("float64")


def first_dtype(dtype: np.dtype, *rest: np.dtype, **attrs) -> np.dtype:
    """Dtype rule of an op whose output has its first input's dtype."""
    _numeric((dtype,))
    return np.dtype(dtype)


def bool_dtype(*dtypes: np.dtype, **attrs) -> np.dtype:
    """Dtype rule of a comparison or logical op: bool, for numeric inputs of any dtype."""
    _numeric(dtypes)
    return np.dtype(bool)


def ufunc_dtype(ufunc: np.ufunc) -> Callable[..., np.dtype]:
    """Dtype rule of an op that is numpy's ``ufunc``: numpy's own type resolution, refusals included.

    ``ufunc_dtype(np.subtract)`` says float64 for float32 and float64 inputs,
    int16 for int8 and uint8, and refuses two bools (numpy cannot subtract
    them), so such a node is refused when it is added, not when it runs.
    """

    def rule(*dtypes: np.dtype, **attrs) -> np.dtype:
        _numeric(dtypes)
        return ufunc.resolve_dtypes((*dtypes, None))[-1]

    rule.__name__ = rule.__qualname__ = f"{ufunc.__name__}_dtype"
    rule.__doc__ = f"numpy's type resolution of ``numpy.{ufunc.__name__}``."
    return rule


_VALID_SAVES = {"inputs", "out"}
_VJP_KEYWORDS = frozenset({"out", "res", "needs"})   # what a VJP rule is passed besides attributes


class Op:
    """An operation: a name, a numpy forward, a numpy VJP and optional rules.

    Parameters
    ----------
    forward
        ``forward(*arrays, **attrs) -> array``; with ``residuals=True`` it
        returns ``(array, residuals)`` and the VJP receives ``res=residuals``.
    name
        The op's registered name; defaults to the forward's ``__name__``.
    shape
        ``shape(*input_shapes, **attrs) -> shape`` with ``None`` for unknown
        sizes; raise ``ValueError`` with a reason when the shapes do not fit.
    dtype
        ``dtype(*input_dtypes, **attrs) -> dtype``; defaults to promotion.
    saves
        What the VJP reads: ``"inputs"`` and/or ``"out"``. Anything not saved
        is freed after the forward pass; an unsaved input reaches the VJP as a
        zero-cost placeholder that has the right shape and dtype but no values.
    residuals
        The forward returns ``(out, residuals)`` to hand work to the VJP.
    float_inputs
        Integer and bool inputs reach the forward as float64, so that a
        transcendental function of ``uint8`` data computes in the float64 its
        ``float_dtype`` rule declares (numpy alone would compute ``exp`` of
        ``uint8`` in float16 and overflow at 12).
    samples
        ``samples(rng) -> list[Sample]`` used by ``dagrad check``.
    override
        Replace an op of the same name from another plugin instead of colliding.
    counterparts
        What the op is called elsewhere, for the op table and for people
        porting code: ``{"numpy": "numpy.tanh", "torch": "torch.tanh"}`` (any
        keys; those two are shown in ``docs/ops.md``).
    """

    def __init__(
        self,
        forward: Callable[..., Any],
        *,
        name: Optional[str] = None,
        shape: Optional[Callable[..., Shape]] = None,
        dtype: Optional[Callable[..., np.dtype]] = None,
        saves: Sequence[str] = ("inputs", "out"),
        residuals: bool = False,
        float_inputs: bool = False,
        samples: Optional[Callable[[np.random.Generator], list]] = None,
        override: bool = False,
        counterparts: Optional[dict] = None,
    ):
        self.forward = _computing_in_float(self, forward) if float_inputs else forward
        self.float_forward = forward  # the forward itself: what runs when every input is already floating point
        self._forward_for: dict = {}  # declared dtype -> forward casting to it (forward_for)
        self.counterparts: dict = dict(counterparts or {})
        self.float_inputs = float_inputs
        self.name = name or forward.__name__
        self.shape_rule = shape
        self.dtype_rule = dtype or result_dtype
        unknown = set(saves) - _VALID_SAVES
        if unknown:
            raise ValueError(f"op {self.name!r}: saves may hold 'inputs' and 'out', not {sorted(unknown)}")
        self.saves = frozenset(saves)
        self.residuals = residuals
        self.samples = samples
        self.override = override
        self.plugin: Optional[str] = None
        self.doc = inspect.getdoc(forward) or ""
        self.vjp_rule: Optional[Callable[..., Any]] = None
        self.vjp_wants: frozenset = frozenset()
        self.graph_vjp_rule: Optional[Callable[..., Any]] = None
        self.graph_vjp_wants: frozenset = frozenset()
        self.arity, self.attr_defaults = _signature_of(forward)
        clash = sorted(set(self.attr_defaults) & _VJP_KEYWORDS)
        if clash:
            # A VJP rule receives attributes and these by keyword: one name cannot be both.
            raise TypeError(
                f"op {self.name!r}: attribute(s) {', '.join(map(repr, clash))} would collide with the keyword(s) "
                "a VJP rule is passed (out=: the forward's output, res=: its residuals, needs=: which inputs "
                "need gradients); rename the attribute"
            )

    def forward_for(self, dtype: np.dtype) -> Callable[..., Any]:
        """The forward of a node of this op declared ``dtype``, for an op with ``float_inputs``.

        It casts integer and bool inputs as ``forward`` does, to the dtype the
        rule gives, which compiling already knows from the node: ``forward``
        calls the rule at every call (about 1 us, half of a small node's call).
        One function per dtype, so generated code names it once.
        """
        fn = self._forward_for.get(dtype)
        if fn is None:
            fn = self._forward_for[dtype] = _casting_to(self.float_forward, _float_target(dtype))
        return fn

    @property
    def summary(self) -> str:
        """First line of the forward's docstring."""
        return self.doc.splitlines()[0] if self.doc else ""

    @property
    def differentiable(self) -> bool:
        return self.vjp_rule is not None

    @property
    def has_graph_vjp(self) -> bool:
        """Whether ``dagrad.grad`` can build this op's VJP as nodes that are differentiable again."""
        return self.graph_vjp_rule is not None

    def vjp(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator that sets ``fn(g, *arrays, *, <attrs>) -> tuple`` as the op's VJP rule.

        The rule receives the output gradient, the inputs (placeholders for
        inputs the op does not save) and every attribute by keyword; write the
        attributes keyword-only and without defaults, since the engine always
        passes them. Three more keywords are passed only to a rule that declares
        them: ``out`` (the forward's output), ``res`` (the residuals of a
        ``residuals=True`` forward) and ``needs`` (one boolean per input saying
        whether its gradient will be used, as PyTorch's ``ctx.needs_input_grad``;
        the rule may return ``None`` for the others).
        """
        self.vjp_wants = self._wants(fn, "VJP", ("out", "res", "needs"))
        params = inspect.signature(fn).parameters
        if "res" in params and not self.residuals and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise TypeError(f"op {self.name!r}: its VJP reads res= but the forward is not declared residuals=True")
        self.vjp_rule = fn
        return fn

    def graph_vjp(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator that sets ``fn(g, *tensors, *, <attrs>) -> tuple`` as the op's graph VJP.

        The same maths as the numpy VJP, written with dagrad ops on Tensors:
        ``g``, the inputs and ``out`` are Tensors of the graph being
        differentiated, and the rule returns one Tensor (or ``None``) per input.
        ``dagrad.grad`` calls it once per node to add that node's backward step
        to the graph, then sums each gradient back to its input's shape and
        dtype, so the rule, like the numpy one, writes the natural broadcasting
        maths. Attributes arrive by keyword as for the numpy VJP; ``out`` and
        ``needs`` are passed to a rule that declares them (there are no
        residuals: a rule recomputes what it needs with ops, or reads ``out``).

        The nodes a rule adds are differentiated again by their own graph VJPs;
        a mask or a tie split that is piecewise constant in an input is built
        from a boolean node (``astype(..., dtype="bool")``), which is never
        differentiated, and the rule's docstring says so.

        Examples
        --------
        >>> import numpy as np, dagrad as dg
        >>> @dg.op(shape=dg.shapes.same_as_first, saves=("inputs",))
        ... def cube(x):
        ...     "x cubed."
        ...     return x ** 3
        >>> @cube.vjp
        ... def _(g, x):
        ...     return (3 * g * x ** 2,)
        >>> @cube.graph_vjp
        ... def _(g, x):
        ...     return (3 * g * x ** 2,)
        >>> cube.has_graph_vjp
        True
        """
        params = inspect.signature(fn).parameters
        if "res" in params:
            raise TypeError(
                f"op {self.name!r}: a graph VJP has no residuals (res=); recompute what it needs with ops, "
                "or read out="
            )
        self.graph_vjp_wants = self._wants(fn, "graph VJP", ("out", "needs"))
        self.graph_vjp_rule = fn
        return fn

    def _wants(self, fn: Callable[..., Any], kind: str, optional: tuple) -> frozenset:
        """The optional keywords a rule declares; ``TypeError`` if it cannot take every attribute."""
        params = inspect.signature(fn).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        if not takes_any:
            missing = [a for a in self.attr_defaults if a not in params]
            if missing:
                raise TypeError(
                    f"op {self.name!r}: its {kind} must accept the attribute(s) {', '.join(missing)} "
                    f"(keyword-only: def _(g, ..., *, {', '.join(missing)}))"
                )
        return frozenset(k for k in optional if takes_any or k in params)

    def vjp_kwargs(self, attrs: dict, needs: tuple) -> dict:
        """Keyword arguments of every VJP call of one node: its attrs, and ``needs`` if the rule wants it.

        The scheduler computes these once per node when compiling; ``out=`` and
        ``res=`` are added per call, for rules that declare them.
        """
        kwargs = dict(attrs)
        if "needs" in self.vjp_wants:
            kwargs["needs"] = tuple(needs)
        return kwargs

    def call_vjp(self, g, arrays, out, res=None, attrs=None, needs=None):
        """Call the VJP rule as the scheduler does (for tools that exercise an op outside a graph)."""
        kwargs = self.vjp_kwargs(self.bind_attrs(attrs or {}), needs if needs is not None else (True,) * len(arrays))
        if "out" in self.vjp_wants:
            kwargs["out"] = out
        if "res" in self.vjp_wants:
            kwargs["res"] = res
        return self.vjp_rule(g, *arrays, **kwargs)

    def call_graph_vjp(self, g, inputs: Sequence, out, attrs: dict, needs: Sequence[bool]):
        """Call the graph VJP as ``dagrad.grad`` does: Tensors in, one Tensor or ``None`` per input out."""
        kwargs = dict(attrs)
        if "out" in self.graph_vjp_wants:
            kwargs["out"] = out
        if "needs" in self.graph_vjp_wants:
            kwargs["needs"] = tuple(needs)
        return self.graph_vjp_rule(g, *inputs, **kwargs)

    def bind_attrs(self, attrs: dict) -> dict:
        """Complete ``attrs`` with defaults; a ``TypeError`` names unknown ones."""
        unknown = set(attrs) - set(self.attr_defaults)
        if unknown:
            known = ", ".join(sorted(self.attr_defaults)) or "none"
            raise TypeError(f"unknown attribute(s) {sorted(unknown)} (known: {known})")
        return {**self.attr_defaults, **attrs}

    def __call__(self, *args, **attrs):
        """Add a node applying the op registered under this op's name to Tensors.

        Numbers and arrays become constants. The graph is found through the
        Tensor arguments (``Graph.apply`` does the work), and the op is looked
        up by name there, so a plugin that overrides this op is what you get.
        """
        if args and args[0].__class__ is Tensor:  # the usual case, straight to its graph: ``dg.tanh(h)``
            name = attrs.pop("name", None)
            return args[0].graph.apply(self.name, args, attrs, name=name)
        return apply(self.name, *args, **attrs)

    def __repr__(self) -> str:
        where = f" from {self.plugin}" if self.plugin else ""
        return f"<Op {self.name}{where}>"


def _computing_in_float(op: "Op", forward: Callable[..., Any]) -> Callable[..., Any]:
    """``forward`` with integer and bool array inputs cast first to the dtype ``op`` declares for its output.

    That is the dtype its rule gives for these inputs (float64 if the rule's is
    not floating point), so numpy computes in it: float32 / int8 stays float32,
    as ``float_dtype`` declares, where casting the integers to float64 made it
    float64 and the node failed its output check.
    """

    @functools.wraps(forward)
    def in_float(*arrays, **attrs):  # the rule asked at every call; a plan asks op.forward_for once
        return op.forward_for(op.dtype_rule(*[a.dtype for a in arrays], **attrs))(*arrays, **attrs)

    return in_float


def _casting_to(forward: Callable[..., Any], target: np.dtype) -> Callable[..., Any]:
    """``forward`` with integer and bool array inputs cast first to ``target``, known beforehand."""

    @functools.wraps(forward)
    def in_float(*arrays, **attrs):
        return forward(*[a if a.dtype.kind in "fc" else a.astype(target) for a in arrays], **attrs)

    return in_float


def _float_target(dtype: Any) -> np.dtype:
    """The dtype integer inputs are cast to for an output of ``dtype``: itself if floating point, else float64."""
    dtype = np.dtype(dtype)
    return dtype if dtype.kind in "fc" else np.dtype(np.float64)


def _signature_of(forward: Callable[..., Any]) -> tuple[Optional[int], dict]:
    """Arity (``None`` if variadic) and attribute defaults read from the forward's signature."""
    arity: Optional[int] = 0
    attrs: dict = {}
    for p in inspect.signature(forward).parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            arity = None
        elif p.kind is p.KEYWORD_ONLY:
            attrs[p.name] = None if p.default is p.empty else p.default
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            if p.default is p.empty:
                if arity is not None:
                    arity += 1
            else:
                attrs[p.name] = p.default
    return arity, attrs


def op(
    fn: Optional[Callable[..., Any]] = None,
    *,
    name: Optional[str] = None,
    shape: Optional[Callable[..., Shape]] = None,
    dtype: Optional[Callable[..., np.dtype]] = None,
    saves: Sequence[str] = ("inputs", "out"),
    residuals: bool = False,
    float_inputs: bool = False,
    samples: Optional[Callable[[np.random.Generator], list]] = None,
    override: bool = False,
    counterparts: Optional[dict] = None,
):
    """Decorator turning a numpy forward into an :class:`Op`; see ``Op`` for the parameters."""

    def make(forward: Callable[..., Any]) -> Op:
        return Op(
            forward,
            name=name,
            shape=shape,
            dtype=dtype,
            saves=saves,
            residuals=residuals,
            float_inputs=float_inputs,
            samples=samples,
            override=override,
            counterparts=counterparts,
        )

    return make(fn) if fn is not None else make


def ops_in(module: Any) -> list[Op]:
    """The ops a module defines (not those it imports), in the order they were defined.

    A plugin's ``dagrad_ops`` hook can return ``ops_in(my_module)`` instead of
    a hand-kept list that a new op could be forgotten from.
    """
    return [
        value for value in vars(module).values()
        if isinstance(value, Op) and getattr(value.forward, "__module__", None) == module.__name__
    ]
