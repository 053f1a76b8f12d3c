"""Which progress bar ``fit`` shows: tqdm's widget in a Jupyter notebook, its text bar everywhere else.

``tqdm.auto`` would pick the widget too, but it warns (``IProgress not
found``) when ipywidgets is missing and then falls back; here the fallback
is chosen first and silently: the text bar, which a notebook shows as it
would in a terminal. ``pip install 'dagrad[notebook]'`` brings the widget.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import IO, Any

__all__ = ["in_notebook", "progress_bar"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython running as a kernel app), False in a terminal or script."""
    ipython = sys.modules.get("IPython")  # never imported here: a script without IPython stays fast
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def progress_bar(total: int, stream: IO) -> Any:
    """A tqdm bar over ``total`` steps: the notebook widget when it can be shown, else text on ``stream``."""
    if in_notebook() and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm as widget

        return widget(total=total, unit="step", leave=True)
    from tqdm.std import tqdm

    return tqdm(total=total, unit="step", dynamic_ncols=True, leave=True, file=stream)
