"""Plans as straight-line Python: one block per instruction, values in local variables, frees as ``del``.

``source(program)`` writes a plan's program out (it is also ``print(plan)``);
``build(program)`` compiles it once; ``run`` calls it. This is what torch.fx's
``GraphModule`` does with its graph: the per-node bookkeeping of a loop
(fetching arguments from lists, looking up attributes, branching on options
that are fixed for the plan) is decided once, here, and the code that runs
does only what this plan needs (runs that check for NaN/Inf or time every node
go through the loop, so the code has no lines for either). Errors still name
the node, op and plugin:
an exception escaping the generated code is mapped from its line back to
the instruction that raised it.

A plan of more than ``INSTRUCTIONS_PER_FUNCTION`` instructions is written as
several functions ("parts") of ``INSTRUCTIONS_PER_PART`` instructions, compiled
one by one and called in turn by ``run``. Python holds a whole function's syntax
tree while it compiles it: a 100,000-node chain took 7.5 GB to compile as one
function. A local that one part leaves to a later one waits in a dict, ``live``:
a part takes out (``pop``) what it mentions, and puts back only what a later part
mentions, so nothing dead is carried and memory is what one function would hold.

Every identifier in the source comes from dagrad. User strings (node names)
appear only in comments, escaped with ``ascii``, and in string literals written
by ``repr``; attribute values appear only as literals ``repr`` wrote from
canonical JSON-shaped data, or as named constants. So a hostile model file
cannot inject code.
"""

from __future__ import annotations

import bisect
import keyword
import math
import re
import types
from array import array
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..errors import DagradError
from ..shapes import fits, format_shape
from .runtime import (
    as_grad_tuple,
    external_identities,
    failed,
    finish,
    fix_gradient,
    fix_output,
    freeze,
    placeholder,
    seed,
    stored_values,
)

__all__ = ["source", "build", "run", "INSTRUCTIONS_PER_FUNCTION", "INSTRUCTIONS_PER_PART"]

ndarray = np.ndarray
_FILENAME = "<dagrad plan>"


INSTRUCTIONS_PER_FUNCTION = 20_000
"""The most instructions (inputs, forwards, VJPs) written as one function; a larger plan is written in parts.

Below it, splitting would cost run time: a value that crosses from one part to
a later one (mostly what the forward pass saves for the backward pass) goes
through a dict, which made a 2,000-op chain split in three parts run about 4%
slower. Above it, that cost is lost in the run, and memory decides: compiling
a function of 20,000 instructions takes about 0.7 GB while Python holds its
syntax tree.
"""

INSTRUCTIONS_PER_PART = 1_000
"""Instructions per function of a plan written in parts (one of more than ``INSTRUCTIONS_PER_FUNCTION``).

Python compiles a long function more slowly per line than a short one, so
short parts compile faster: a 100,000-node chain (200,000 instructions) took
17.6 s to write and compile in parts of 1,000, against 24.8 s in parts of
20,000, and peaked at 0.8 GB instead of 1.8 GB, running as fast.
"""


@dataclass
class Code:
    """A program's compiled code, and which instruction each line of its source belongs to.

    The source is not kept (it can be megabytes, and ``source(program)`` writes
    it again for the rare ``print(plan)``). ``function`` runs a plan written as
    one function; ``parts`` are the functions of a larger plan, called in turn.

    The functions' globals are the constants the source names (instructions,
    ops, dtypes), never the program, the plan or the functions themselves: the
    code is cached on the program, and a reference back would make a cycle.
    """

    function: Any
    parts: tuple = ()
    owned: Any = None   # the line ranges instructions own: first lines (ascending), last lines, owners

    def owner(self, line: int) -> Optional[tuple]:
        """``("forward" | "backward", instruction)`` whose code holds source line ``line``, or None."""
        firsts, lasts, owners = self.owned
        k = bisect.bisect_right(firsts, line) - 1
        return owners[k] if k >= 0 and line <= lasts[k] else None


class _Writer:
    """Collects lines, the constants they name, the line range each instruction owns, and where instructions end."""

    def __init__(self):
        self.lines: list[str] = []
        self.owned: list = []   # (first line, last line, owner); line numbers count from 1
        self.ends: list[int] = []   # the number of lines written when each instruction ended
        self.constants: dict = {}
        self._names: dict = {}  # id(object) -> constant name
        self._owner = None
        self._first = 1

    def own(self, kind: Optional[str], ins: Any = None) -> None:
        """The lines from here on belong to ``ins`` (``kind`` None: to no instruction)."""
        if self._owner is not None and len(self.lines) >= self._first:
            self.owned.append((self._first, len(self.lines), self._owner))
        self._owner = None if kind is None else (kind, ins)
        self._first = len(self.lines) + 1

    def end(self) -> None:
        """An instruction's lines end here: a function may end here too."""
        self.ends.append(len(self.lines))

    def line(self, text: str, comment: str = "", indent: int = 1) -> None:
        code = "    " * indent + text
        if comment:
            code = f"{code:<60}  # {comment}"
        self.lines.append(code)

    def known(self, value: Any) -> Optional[str]:
        """The name ``value`` already has in the generated module, or None."""
        return self._names.get(id(value))

    def const(self, value: Any, stem: str) -> str:
        """A name for ``value`` in the generated module (one name per object)."""
        key = id(value)
        if key in self._names:
            return self._names[key]
        name = _identifier(stem, self.constants)
        self.constants[name] = value
        self._names[key] = name
        return name

    def literal(self, value: Any, stem: str) -> str:
        """``value`` as Python source: a literal when it is plain data, else a named constant."""
        return repr(value) if _is_literal(value) else self.const(value, stem)


def _identifier(stem: str, taken: dict) -> str:
    # ASCII only: Python folds identifiers to NFKC, so "ｖ3" would be compiled as the local v3 and
    # "ﬁlter" as the builtin filter, while the constant waits in the namespace under its own spelling.
    base = re.sub(r"[^0-9A-Za-z_]", "_", stem) or "c"
    if (base[0].isdigit() or keyword.iskeyword(base) or base in _RESERVED or _LOCAL.fullmatch(base)
            or _PART.fullmatch(base) or _DUNDER.fullmatch(base)):
        base = "_" + base
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name


_RESERVED = {"run", "fed", "stored", "check", "cotangent", "external", "ndarray", "len", "order", "append",
             "flows", "gs", "gi", "missing", "live", "asarray", "None", "True", "False", "list", "tuple", "_"}
# The generated locals: values v<slot>, residuals r<slot>, shapes s<slot>, gradients g<slot> and
# "we own g<slot>" flags o<slot>. A constant named like one (an op called "v3") would be shadowed by it.
_LOCAL = re.compile(r"[vrsgo]\d+")
# The functions of a plan written as parts: defined in the constants' namespace, then taken out of it,
# so a constant of that name would be lost. "part" too: a second "part" would be numbered "part_2".
_PART = re.compile(r"part(_\d+)?")
# Names Python itself reads from a module's namespace: an op called "__builtins__" would replace the
# builtins the code calls (list, len).
_DUNDER = re.compile(r"__\w*__")


def _is_literal(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, tuple):
        return all(_is_literal(v) for v in value)
    return False


def _c(name: str) -> str:
    """A node name for a comment: printable ASCII only, so it can never end the comment's line."""
    return ascii(name)


# ------------------------------------------------------------------- writing --


def source(program: Any) -> str:
    """The Python source that runs ``program`` (``print(plan)`` shows it)."""
    return "\n".join(_write(program).lines) + "\n"


@dataclass
class _Written:
    """A program as source text: its functions (compiled one by one) and the line range each instruction owns."""

    lines: list       # the whole source, line by line (joined only for print(plan): it can be 100 MB)
    functions: list   # (name, number in text of its def line, its lines from the def line on)
    owned: list       # (first line, last line, owner), line numbers in text, ascending
    constants: dict


def _write(program: Any) -> _Written:
    size = len(program.feeds) + len(program.stored) + len(program.forward) + len(program.backward)
    split = size > INSTRUCTIONS_PER_FUNCTION
    w = _Writer()
    helpers = {"ndarray": ndarray, "fix_output": fix_output, "fix_gradient": fix_gradient, "fits": fits,
               "as_grad_tuple": as_grad_tuple, "freeze": freeze,
               "placeholder": placeholder, "seed": seed, "asarray": np.asarray}
    w.constants.update(helpers)
    names, dtypes = program.nodes, program.dtypes
    shape_of: dict = {}   # slot -> source text of its shape at run time (a constant, or a recorded local)
    declared = {f.slot: f.shape for f in program.feeds} | {ins.slot: ins.shape for ins in program.forward}
    for s in program.stored:
        declared[s.slot] = s.shape
    needs_shape = _slots_whose_shape_backward_needs(program)

    def dtype_name(slot: int) -> str:
        dtype = dtypes[slot]
        # Named after str(dtype) only the first time: numpy builds that string in Python, at about
        # 5 us, which was a fifth of writing a large plan's code.
        return w.known(dtype) or w.const(dtype, str(dtype))

    def remember_shape(slot: int, var: str) -> None:
        shape = declared.get(slot)
        if shape is not None and None not in shape:
            shape_of[slot] = repr(tuple(shape))
        elif slot in needs_shape:
            w.line(f"s{slot} = {var}.shape")
            shape_of[slot] = f"s{slot}"

    # --- inputs
    w.line("# inputs: feeds, then params and consts", indent=1)
    for k, f in enumerate(program.feeds):
        w.line(f"v{f.slot} = fed[{k}]", f"{_c(f.name)}: input {format_shape(f.shape) if f.shape is not None else '?'} {f.dtype}")
        if f.guard:
            w.line(f"v{f.slot} = freeze(v{f.slot}, external)")
        remember_shape(f.slot, f"v{f.slot}")
        w.end()
    for k, s in enumerate(program.stored):
        w.line(f"v{s.slot} = stored[{k}]", f"{_c(s.name)}: {s.kind} {format_shape(declared[s.slot])} {dtypes[s.slot]}")
        if s.guard:
            w.line(f"v{s.slot} = freeze(v{s.slot}, external)")
        remember_shape(s.slot, f"v{s.slot}")
        w.end()

    # --- forward
    w.line("# forward")
    for ins in program.forward:
        w.own("forward", ins)
        me = w.const(ins, f"I{ins.slot}")
        fn = w.const(ins.fn, ins.op.name)
        args = ", ".join([f"v{i}" for i in ins.inputs] + [f"{k}={w.literal(v, f'{ins.op.name}_{k}')}"
                                                          for k, v in ins.attrs.items()])
        target = f"v{ins.slot}"
        if ins.op.residuals:
            target = f"v{ins.slot}, r{ins.slot}" if ins.keep_residuals else f"v{ins.slot}, _"
        w.line(f"{target} = {fn}({args})", f"{_c(ins.name)}")
        v = f"v{ins.slot}"
        checks = [f"{v}.__class__ is not ndarray", f"{v}.dtype is not {dtype_name(ins.slot)}"]
        if ins.ndim >= 0:
            if ins.tail is None:
                checks.append(f"not fits({v}.shape, {me}.shape)")
            elif ins.lead == 0:
                checks = checks[:1] + [f"{v}.shape != {tuple(ins.tail)!r}"] + checks[1:]
            else:
                checks.append(f"len({v}.shape) != {ins.ndim} or {v}.shape[{ins.lead}:] != {tuple(ins.tail)!r}")
        w.line(f"if {' or '.join(checks)}: {v} = fix_output({me}, {v})")
        if ins.guard:
            w.line(f"{v} = freeze({v}, external)")
        w.own(None)
        remember_shape(ins.slot, v)
        if ins.free:
            w.line("del " + ", ".join(f"v{s}" for s in ins.free))
        w.end()

    # --- backward
    if program.backward:
        _write_backward(w, program, shape_of, declared, dtype_name, split)
        order = w.const(tuple(ins.name for ins in program.backward), "ORDER")
        w.line(f"order = list({order}) if not missing else [n for n in {order} if n not in missing]")
    else:
        w.line("order, flows = [], None")

    # --- result
    values = ", ".join(f"{names[s]!r}: v{s}" for s, _ in program.kept_values)
    grads = ", ".join(f"{names[s]!r}: g{s}" for s, _ in program.kept_grads) if program.backward else ""
    wrt_shapes = ", ".join(f"{s}: {shape_of.get(s, 'None')}" for s, n in program.kept_grads if n in program.wrt)
    w.line(f"return {{{values}}}, {{{grads}}}, order, flows, {{{wrt_shapes}}}")

    w.own(None)
    if program.loss:
        kind = f"backward from {_c(program.loss)} with respect to {', '.join(map(_c, program.wrt)) or 'nothing'}"
    else:
        kind = f"forward to {', '.join(map(_c, program.outputs))}"
    title = f"# dagrad plan: {kind}; keep={program.keep!r}"
    if split:
        return _parts(w, title)
    header = [title, "def run(fed, stored, cotangent, external):"]
    lines = header + w.lines
    owned = [(first + len(header), last + len(header), owner) for first, last, owner in w.owned]
    return _Written(lines, [("run", 2, lines[1:])], owned, w.constants)


# The locals of generated code: values v<slot>, residuals r<slot>, recorded shapes s<slot>, gradients
# g<slot>, "we own g<slot>" flags o<slot>, and the backward pass's missing and flows (gs, gi and _ are
# temporaries of one instruction). Comments, string literals (node names) and keyword arguments'
# names (an op's attribute may be called "s1" or "r0": written as "s1=", never as "s1 =", which is how
# every assignment is written) are matched whole, so that names inside them are skipped: only group 1
# is a local.
_MENTION = re.compile(r"""#.*|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|\w+=(?!=)|\b([vrsgo]\d+|missing|flows)\b""")


def _parts(w: _Writer, title: str) -> _Written:
    """The program as functions of at most ``INSTRUCTIONS_PER_PART`` instructions; ``run`` calls them in turn.

    A part first takes out of ``live`` the locals it mentions that an earlier
    part did; gradients and ownership flags it mentions first start as None and
    False (as the one-function form starts every gradient), since a VJP that no
    gradient reached leaves them unset. Last, it puts back the locals a later part
    mentions. The last part returns the result.
    """
    cuts = w.ends[INSTRUCTIONS_PER_PART - 1::INSTRUCTIONS_PER_PART]
    bounds = [0] + [c for c in cuts if c < len(w.lines)] + [len(w.lines)]
    mentions = []
    first: dict = {}
    last: dict = {}
    for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
        # One search over the part's text, not one per line: no pattern crosses a line's end.
        names = set(_MENTION.findall("\n".join(w.lines[a:b])))
        names.discard("")
        mentions.append(sorted(names, key=_by_slot))
        for name in names:
            first.setdefault(name, k)
            last[name] = k
    text = [title, f"# written as {len(mentions)} functions of at most {INSTRUCTIONS_PER_PART:,} instructions, "
                   "run in turn; what one leaves to a later one waits in `live`"]
    functions: list = []
    shifts: list = []   # (first w-line of the part, its shift to a line number in text)
    for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
        mentioned = mentions[k]
        fresh = [n for n in mentioned if first[n] == k]
        head = ["", f"def part_{k + 1}(fed, stored, cotangent, external, live):"]
        head += [f"    {n} = live.pop({n!r})" for n in mentioned if first[n] < k]
        head += [f"    {' = '.join(group)} = {value}" for prefix, value in (("g", "None"), ("o", "False"))
                 for group in _groups([n for n in fresh if n[0] == prefix], 16)]
        shifts.append((a + 1, len(text) + len(head) - a))
        body = w.lines[a:b] + [f"    live[{n!r}] = {n}" for n in mentioned if last[n] > k]
        functions.append((f"part_{k + 1}", len(text) + 2, head[1:] + body))
        text += head + body
    owned = []
    part = 0
    for first_line, last_line, owner in w.owned:   # both ascending; an instruction never spans two parts
        while part + 1 < len(shifts) and shifts[part + 1][0] <= first_line:
            part += 1
        shift = shifts[part][1]
        owned.append((first_line + shift, last_line + shift, owner))
    return _Written(text, functions, owned, w.constants)


def _by_slot(name: str) -> tuple:
    """Locals sorted by slot, then kind: the order a reader looks for them in."""
    return (int(name[1:]), name) if name[1:].isdigit() else (-1, name)


def _groups(items: list, size: int) -> list:
    return [items[k:k + size] for k in range(0, len(items), size)]


def _slots_whose_shape_backward_needs(program: Any) -> set:
    """Slots whose run-time shape the backward pass reads: gradient targets, placeholders, wrt zeros."""
    slots = {s for s, name in program.kept_grads if name in program.wrt}
    for ins in program.backward:
        if ins.op is None:
            continue
        slots.update(t.slot for t in ins.targets)
        if not ins.reads_inputs:
            slots.update(ins.inputs)
    return slots


def _write_backward(w: _Writer, program: Any, shape_of: dict, declared: dict, dtype_name, split: bool) -> None:
    names, dtypes = program.nodes, program.dtypes
    keep_all = program.keep == "all"
    w.line("# backward: each node's gradient is complete when its turn comes (reverse topological order)")
    w.line("missing = []                              # nodes no gradient reached, left out of the order")
    w.line("flows = {}" if keep_all else "flows = None")
    keeps_residuals = {ins.slot for ins in program.forward if ins.keep_residuals}
    loss_slot = program.backward[0].slot
    if not split:  # (split into parts, each part starts the gradients it mentions first: see _parts)
        for group in _groups([f"g{ins.slot}" for ins in program.backward[1:]], 16):
            w.line(" = ".join(group) + " = None")
    w.line(f"g{loss_slot} = seed({program.loss!r}, v{loss_slot}, cotangent)", f"{_c(program.loss)}: #1")
    for ins in program.backward:
        g = f"g{ins.slot}"
        if ins.op is None:
            w.line(f"if {g} is None: missing.append({names[ins.slot]!r})", f"{_c(ins.name)}: gradient complete")
            w.end()
            continue
        w.own("backward", ins)
        me = w.const(ins, f"B{ins.slot}")
        w.line(f"if {g} is None: missing.append({names[ins.slot]!r})", f"{_c(ins.name)}: vjp of {ins.op.name}")
        w.line("else:")
        if ins.guard:
            w.line(f"{g} = freeze({g}, external)", indent=2)
        args = [g]
        for i in ins.inputs:
            if ins.reads_inputs:
                args.append(f"v{i}")
            elif shape_of[i].startswith("("):  # a static shape: the shared stand-in is a constant of the code
                shape = tuple(declared[i])
                stand_in = placeholder(shape, dtypes[i])  # shared: named once (str(dtype) costs 5 us)
                args.append(w.known(stand_in) or w.const(stand_in, "unsaved_" + "x".join(map(str, shape))
                                                         + f"_{dtypes[i]}" if shape else f"unsaved_{dtypes[i]}"))
            else:
                args.append(f"placeholder({shape_of[i]}, {dtype_name(i)})")
        wants = ins.op.vjp_wants
        if "out" in wants:
            args.append(f"out=v{ins.slot}" if ins.reads_out else "out=None")
        if "res" in wants:
            args.append(f"res=r{ins.slot}" if ins.slot in keeps_residuals else "res=None")
        args += [f"{k}={w.literal(v, f'{ins.op.name}_{k}')}" for k, v in ins.kwargs.items()]
        vjp = w.const(ins.op.vjp_rule, f"vjp_{ins.op.name}")
        w.line(f"gs = {vjp}({', '.join(args)})", indent=2)
        w.line(f"if gs.__class__ is not tuple or len(gs) != {len(ins.inputs)}: gs = as_grad_tuple(gs, {me})", indent=2)
        if "res" in wants and ins.slot in keeps_residuals:
            w.line(f"del r{ins.slot}", indent=2)
        for t in ins.targets:
            i = t.slot
            gi = "gi" if t.shared else f"g{i}"
            w.line(f"{gi} = gs[{t.position}]", indent=2)
            w.line(f"if {gi} is not None:", indent=2)
            shape = shape_of[i]
            w.line(f"if {gi}.__class__ is not ndarray or {gi}.shape != {shape} or {gi}.dtype is not {dtype_name(i)}: "
                   f"{gi} = fix_gradient({me}, {t.position}, {names[i]!r}, {gi}, {shape}, {dtype_name(i)}, "
                   f"{dtype_name(ins.slot)})", indent=3)
            edge = repr((names[i], ins.name))
            if keep_all:
                if t.shared:
                    w.line(f"flows[{edge}] = {gi} if flows.get({edge}) is None else flows[{edge}] + {gi}", indent=3)
                else:
                    w.line(f"flows[{edge}] = None", indent=3)
            if t.shared:
                scalar_safe = "asarray(" if shape in ("()", ) or not shape.startswith("(") else "("
                w.line(f"if g{i} is None: g{i} = gi; o{i} = False", indent=3)
                w.line(f"elif o{i}: g{i} += gi", indent=3)
                w.line(f"else: g{i} = {scalar_safe}g{i} + gi); o{i} = True", indent=3)
        frees = [f"v{s}" for s in ins.free_values] + ([g] if ins.free_grad else [])
        if frees:
            w.line("del " + ", ".join(frees), indent=2)
        w.own(None)
        w.end()


# ----------------------------------------------------------------- running --


def build(program: Any) -> Code:
    """Compile ``program``'s source once; the result runs every later run of the program.

    Each function is compiled on its own, then its line numbers are moved to
    those of the whole source: a traceback's line is the printed plan's line,
    and maps to the instruction that owns it.
    """
    written = _write(program)
    namespace = dict(written.constants)
    functions = []
    for name, def_line, lines in written.functions:
        code = _moved(compile("\n".join(lines) + "\n", _FILENAME, "exec"), def_line - 1)
        exec(code, namespace)  # noqa: S102 - our own generated source (see the module docstring)
        # Taken out of their own globals: a function found in them would make a cycle that only
        # the garbage collector frees (the code never calls itself or another part).
        functions.append(namespace.pop(name))
    firsts = array("q", [first for first, _, _ in written.owned])
    lasts = array("q", [last for _, last, _ in written.owned])
    owned = (firsts, lasts, [owner for _, _, owner in written.owned])
    if len(functions) == 1:
        return Code(functions[0], (), owned)
    return Code(None, tuple(functions), owned)


def _moved(code: types.CodeType, lines: int) -> types.CodeType:
    """``code`` with its line numbers, and those of the code objects it holds, ``lines`` further down.

    Line numbers are stored relative to a code object's first line, so moving
    that moves them all. (Compiling each part after as many blank lines as come
    before it did the same, at a cost that grew with the square of the number
    of parts: a million-node plan's 2,000 parts meant tokenizing ten billion
    newlines.)
    """
    consts = tuple(_moved(c, lines) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_firstlineno=code.co_firstlineno + lines, co_consts=consts)


def run(plan: Any, code: Code, fed: list, cotangent: Optional[np.ndarray]):
    """Run ``plan`` through its compiled ``code``; map any exception from an op back to its node."""
    stored = stored_values(plan)
    external = external_identities(fed + stored)
    try:
        if code.parts:
            live: dict = {}
            for part in code.parts[:-1]:
                part(fed, stored, cotangent, external, live)
            values, grads, order, flows, wrt_shapes = code.parts[-1](fed, stored, cotangent, external, live)
        else:
            values, grads, order, flows, wrt_shapes = code.function(fed, stored, cotangent, external)
    except DagradError:
        raise
    except Exception as exc:
        mapped = _mapped(plan, code, exc)
        if mapped is exc:
            raise
        raise mapped from exc
    return finish(plan, values, grads, order, flows, external, wrt_shapes)


def _mapped(plan: Any, code: Code, exc: Exception) -> Exception:
    """The ``OpError`` naming the node whose instruction raised ``exc``, or ``exc`` itself if none did."""
    tb = exc.__traceback__
    frame = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _FILENAME:
            frame = tb
        tb = tb.tb_next
    if frame is None:
        return exc
    owner = code.owner(frame.tb_lineno)
    if owner is None:
        return exc
    kind, ins = owner
    local = frame.tb_frame.f_locals
    if kind == "backward" and not ins.reads_inputs:  # the VJP was handed stand-ins: describe those, as the loop does
        arrays = [_stand_in(plan, i, local) for i in ins.inputs]
    else:
        arrays = [local.get(f"v{i}") for i in ins.inputs]
    phase = "forward" if kind == "forward" else "backward (VJP)"
    return failed(ins.name, ins.op, phase, arrays, exc)


def _stand_in(plan: Any, slot: int, local: dict) -> Optional[np.ndarray]:
    """The placeholder a VJP got for the unsaved input in ``slot``: its shape recorded in the run, or declared."""
    shape = local.get(f"s{slot}")
    if shape is None:
        program = plan.program
        records = (*program.feeds, *program.stored, *program.forward)
        shape = next((rec.shape for rec in records if rec.slot == slot), None)
    if shape is None or None in shape:
        return None
    return placeholder(shape, plan.dtypes[slot])
