"""Convolution ops for dagrad (NCHW), shipped as a separate distribution found through its entry point."""

__version__ = "0.1.0"
