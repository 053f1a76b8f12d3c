"""docs/ops.md's table of every op is what tools/op_table.py writes from the registry: it cannot go stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import dagrad as dg

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("op_table", ROOT / "tools" / "op_table.py")
op_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(op_table)


def test_the_committed_op_table_is_what_the_registry_says():
    page = op_table.PAGE.read_text(encoding="utf-8")
    assert op_table.render(page) == page, "docs/ops.md's op table is out of date: run `make ops-table`"


def test_the_table_has_a_row_per_op_of_the_bundled_plugins_with_its_counterparts():
    lines = op_table.rows()
    bundled = [name for name, op in dg.registry().ops.items() if op.plugin in op_table.BUNDLED]
    assert len(lines) == 2 + len(bundled)
    tanh = next(line for line in lines if line.startswith("| `tanh` |"))
    assert tanh == ("| `tanh` | Elementwise hyperbolic tangent. | builtins | first and higher | `numpy.tanh` "
                    "| `torch.tanh` |")


def test_a_pipe_in_a_summary_does_not_break_the_table():
    row = next(line for line in op_table.rows() if line.startswith("| `binary_cross_entropy_with_logits` |"))
    assert "large \\|logits\\|" in row and row.count(" | ") == 5


def test_every_built_in_op_names_what_it_is_called_elsewhere_or_is_a_gradient_building_block():
    # The ops dagrad.grad builds gradients from are dagrad's own; every other built-in has a counterpart.
    own = {"split_like", "vjp", "attention_weights",
           "dropout_mask",  # the mask dropout draws, drawn again for its gradient from the same key
           # transposes that exist as ops so that graph VJPs are differentiable again
           "pad_transpose", "tile_transpose", "repeat_transpose", "split_transpose", "diagonal_transpose",
           "add_at_index", "expscan", "expscan_reverse"}
    missing = [name for name, op in dg.registry().ops.items()
               if op.plugin == "builtins" and not op.counterparts and name not in own]
    assert not missing, f"built-in ops without counterparts=: {missing}"
