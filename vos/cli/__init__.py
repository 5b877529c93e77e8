"""The ``seggpt-vos`` command line: a thin layer over the Python API (entry point :func:`main`)."""

from .main import main

__all__ = ["main"]
