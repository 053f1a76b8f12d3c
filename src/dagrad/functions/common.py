"""What the function modules share: the ``Axis`` annotation and two small argument helpers."""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["Axis", "optional_inputs", "suffixed"]

Axis = Optional[Any]


def optional_inputs(*tensors: Any) -> list:
    """The optional inputs that are given, in order (a bias without a weight is handled by the caller)."""
    return [t for t in tensors if t is not None]


def suffixed(name: Optional[str], suffix: str) -> Optional[str]:
    return None if name is None else f"{name}_{suffix}"
