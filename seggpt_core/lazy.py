"""Lazy package exports (PEP 562): a package's public names import their module on first use, so that light users
(the command line, ``seggpt-vos eval``) do not pay for torch. ``eval/`` writes its own, as it imports nothing of
ours."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """The module ``__getattr__`` of ``package``: ``name`` comes from its submodule ``exports[name]``."""

    def __getattr__(name: str) -> object:
        if name in exports:
            return getattr(import_module(f".{exports[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
