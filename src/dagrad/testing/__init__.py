"""Testing tools for op authors: ``check_op``, ``check_plugin`` and a one-line pytest suite.

>>> from dagrad.testing import check_op
>>> check_op("mul").op
'mul'

In a plugin's tests, one line checks every op the plugin provides::

    from dagrad.testing import op_tests
    test_ops = op_tests("myplugin")          # one pytest test per op
"""

from .checks import OpCheckFailure, OpCheckReport, check_op, check_plugin
from .diagnose import likely_cause
from .suite import op_tests

__all__ = ["check_op", "check_plugin", "op_tests", "OpCheckFailure", "OpCheckReport", "likely_cause"]


def __dir__():  # dir() lists the public names, not the submodules and imports behind them
    return __all__
