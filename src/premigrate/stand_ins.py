"""Standard modules that a module premigrate imports loads at its top but a run never uses: stood in for while that
module is imported, and loaded for real only if one of their names is ever read.

Start-up is what a no-op `up` costs (it runs on every pod start, and bench/ measures it against the driver's own
floor). Two such imports are the largest ones left that premigrate does not need:
- asyncio, imported by structlog._native for async logging methods premigrate never calls (with ssl, subprocess,
  concurrent.futures and some 25 submodules of its own);
- inspect, imported by dataclasses, which reads it only to write a docstring for a class without one (with ast,
  dis and tokenize).

Only the stand-in's own sys.modules entry is removed again after the import, so every other `import inspect` or
`import asyncio` in the process gets the real module, and the importing module's reference forwards to it.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class ModuleOnFirstUse(types.ModuleType):
    """Stands in for a module: the first name read through it loads the real module."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:  # read while still standing in: load the real one in its place
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def import_without(module: str, *stand_ins: str) -> None:
    """Import `module` with each of `stand_ins` that is not loaded yet stood in for (ModuleOnFirstUse). Nothing
    happens when `module` is loaded already or all of `stand_ins` are."""
    missing = [name for name in stand_ins if name not in sys.modules]
    if module in sys.modules or not missing:
        return
    for name in missing:
        sys.modules[name] = ModuleOnFirstUse(name)
    try:
        importlib.import_module(module)
    finally:
        for name in missing:
            if isinstance(sys.modules.get(name), ModuleOnFirstUse):
                del sys.modules[name]
