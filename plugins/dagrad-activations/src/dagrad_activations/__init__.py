"""Activation ops for dagrad, shipped as a separate distribution found through its entry point."""

__version__ = "0.2.0"
