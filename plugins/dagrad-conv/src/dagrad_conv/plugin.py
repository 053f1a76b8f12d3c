"""The conv plugin: registers conv2d, max_pool2d, avg_pool2d and flatten through the ``dagrad_ops`` hook."""

from __future__ import annotations

from dagrad.extend import hookimpl

from .conv import conv2d
from .flatten import flatten
from .pool import avg_pool2d, max_pool2d


@hookimpl
def dagrad_ops():
    return [conv2d, max_pool2d, avg_pool2d, flatten]
