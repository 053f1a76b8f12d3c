"""Convolution, pooling and resizing ops for dagrad (1 to 3 spatial axes), found through an entry point."""

__version__ = "0.2.0"
