"""Lazy package exports: ``from seqdiff.diffusion import Sampler`` imports the submodule that defines
``Sampler`` on first use, so a package can list its public names without importing (and paying for)
every module — the command line's ``--help`` loads no torch this way."""

from __future__ import annotations

import importlib
from typing import Any, Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, namespace: dict[str, Any],
                 exports: dict[str, tuple[str, ...]]) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package`` whose public names live in submodules:
    ``exports`` maps a submodule (relative name) to the names it provides; a name is imported on first
    access and cached in the package's ``namespace`` (its ``globals()``)."""
    where = {name: module for module, names in exports.items() for name in names}

    def getattr_(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(where))

    return sorted(where), getattr_, dir_
