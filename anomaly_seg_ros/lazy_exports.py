"""Packages that import their modules on first use of a name (PEP 562), so that importing the package pulls in
neither ROS nor torch: ``demo`` (its sources work without ROS) and ``export`` (its TensorRT build without torch)."""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ['lazy_exports']


def lazy_exports(package: str, homes: Mapping[str, Iterable[str]],
                 names: Iterable[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` whose ``names`` (its ``__all__``) live in the modules
    ``homes`` maps them to (module -> the names it gives the package); a name is imported on first use and then
    kept in the package's namespace."""
    home = {name: module for module, given in homes.items() for name in given}
    namespace = importlib.import_module(package).__dict__
    public = set(names)

    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f'module {package!r} has no attribute {name!r}')
        value = getattr(importlib.import_module(f'{package}.{home[name]}'), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *public})

    return __getattr__, __dir__
