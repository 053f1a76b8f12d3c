"""The scheduler: compile a graph into a ``Plan`` (compile passes) and run it (an interpreter loop, or
Python generated for the plan), with a reference interpreter that defines what running means.

Modules, one job each: ``passes`` compiles; ``program`` holds the instruction
records and the ``Program`` they make up; ``plan`` is the ``Plan`` (a graph and
its program) and picks an executor; ``loop`` and
``codegen`` execute; ``runtime`` holds what they share; ``reference`` is the
executable definition; ``anomalies`` is NaN/Inf checking.
"""

from __future__ import annotations

from .anomalies import check_anomalies, checking
from .passes import compile
from .plan import Plan
from .reference import run_reference

__all__ = ["compile", "Plan", "check_anomalies", "checking", "run_reference"]
