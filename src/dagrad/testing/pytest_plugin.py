"""dagrad's pytest plugin (entry point ``pytest11``): a marker, a fixture and a report header.

Loaded automatically in any pytest run once dagrad is installed. It adds:

- the marker ``@pytest.mark.dagrad_ops("plugin-or-op", ...)`` which parametrizes
  the fixture ``dagrad_op`` over every op named (plugins expand to their ops)::

      @pytest.mark.dagrad_ops("myplugin")
      def test_my_op_in_a_graph(dagrad_op):
          check_op(dagrad_op)              # or anything else with the Op object

- a header line listing the dagrad plugins that loaded, so a CI log shows
  which op packs (and versions) a run used.

``dagrad.testing.op_tests`` is the one-line form for the common case.
"""

from __future__ import annotations

import pytest


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers",
        "dagrad_ops(*names): parametrize the dagrad_op fixture over the ops of these plugins or op names",
    )


def pytest_generate_tests(metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("dagrad_ops")
    if marker is None or "dagrad_op" not in metafunc.fixturenames:
        return
    from .suite import ops_of

    names = ops_of(marker.args)
    metafunc.parametrize("dagrad_op", names, ids=names, indirect=True)


@pytest.fixture
def dagrad_op(request):
    """The ``dagrad.Op`` under test, from the ``dagrad_ops`` marker."""
    if not hasattr(request, "param"):
        pytest.fail("the dagrad_op fixture needs @pytest.mark.dagrad_ops('plugin-or-op', ...)", pytrace=False)
    from ..plugins import registry

    return registry().op(request.param)


def pytest_report_header(config) -> str:
    try:
        from .._version import __version__
        from ..plugins import registry

        infos = registry().plugins.values()
    except Exception as exc:  # noqa: BLE001 - a header must never break a test run
        return f"dagrad: plugins could not be listed: {exc}"
    parts = []
    for info in infos:
        text = info.name + (f" {info.version}" if info.version and info.name != "builtins" else "")
        parts.append(text if info.status == "loaded" else f"{text} [{info.status}]")
    return f"dagrad {__version__}, plugins: {', '.join(parts)}"
