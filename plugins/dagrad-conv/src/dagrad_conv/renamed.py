"""Attributes renamed to PyTorch's names in dagrad-conv 0.2, whose old names still work for one release."""

from __future__ import annotations

import warnings


def renamed(value, old_value, *, default, name: str, old_name: str, who: str, warn: bool = False):
    """``value`` of attribute ``name``, or ``old_value`` given under its deprecated name ``old_name``.

    ``warn`` (from a shape rule, which runs once when the node is added) emits
    the ``DeprecationWarning``; giving both names different values is a ``ValueError``.
    """
    if old_value is None:
        return value
    if warn:
        warnings.warn(f"the attribute {old_name}= of {who} is deprecated; use {name}= (PyTorch's name)",
                      DeprecationWarning, stacklevel=3)
    if value not in (default, old_value):
        raise ValueError(f"give {name}= only ({old_name}= is its deprecated name), not both "
                         f"({value!r} and {old_value!r})")
    return old_value
