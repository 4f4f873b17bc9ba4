"""Standard modules that a module premigrate imports loads at its top but a run never uses: stood in for while that
module is imported, and loaded for real only if one of their names is ever read.

Start-up is what a no-op `up` costs (it runs on every pod start, and bench/ measures it against the driver's own
floor). Two such imports are the largest ones left that premigrate does not need:
- asyncio, imported by structlog._native for async logging methods premigrate never calls (with ssl, subprocess,
  concurrent.futures and some 25 submodules of its own);
- inspect, imported by dataclasses, which reads it only to write a docstring for a class without one (with ast,
  dis and tokenize).
Smaller ones, each a share of a millisecond: copy (with weakref), which dataclasses reads only in asdict() and
astuple(); ntpath, which pathlib keeps for its Windows paths and whose import probes sys.path for five Windows-only
modules; fnmatch, read by pathlib's glob() and match(); ipaddress, read by urllib.parse for a bracketed host;
tokenize and textwrap, which traceback (PyMySQL imports it) reads only while formatting a traceback.

Only the stand-in's own sys.modules entry is removed again after the import, so every other `import inspect` or
`import asyncio` in the process gets the real module, and the importing module's reference forwards to it.

after_import is the other half for a module that must be set up whenever something loads it: log.py keeps `logging`
out of a run that has no library using it (structlog's processors only name it, PyMySQL never imports it), and
still installs its bridge the moment psycopg, tenacity or OpenTelemetry imports logging, before any of them can log.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec


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


def after_import(module: str, callback: Callable[[], None]) -> None:
    """Call `callback` now if the top-level `module` is loaded, else right after its code has run when something
    imports it: before that import statement returns, so before the importer can use the module. Once."""
    if module in sys.modules:
        callback()
    elif not any(isinstance(f, _AfterImport) and (f.module, f.callback) == (module, callback) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(module, callback))


class _AfterImport:
    """The sys.meta_path finder of after_import: for its module, the spec the other finders give, with a loader
    that calls back once the module's code has run. It leaves sys.meta_path when that happens, not before: a spec
    asked for without a load (importlib.util.find_spec, pkgutil) must not use it up."""

    def __init__(self, module: str, callback: Callable[[], None]) -> None:
        self.module, self.callback = module, callback

    def find_spec(self, name: str, path: Sequence[str] | None, target: types.ModuleType | None = None,
                  ) -> ModuleSpec | None:
        if name != self.module:
            return None
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec: ModuleSpec | None = find(name, path, target) if find is not None else None
            if spec is not None:
                if hasattr(spec.loader, "exec_module"):  # every loader of importlib's has it
                    spec.loader = cast("Loader", _ThenCall(spec, self))  # a Loader by its methods
                return spec
        return None

    def loaded(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        self.callback()


class _ThenCall:
    """A module's own loader, then the hook's callback. The module and its spec get their own loader back before its
    code runs, so nothing of this is left on them."""

    def __init__(self, spec: ModuleSpec, hook: _AfterImport) -> None:
        self._spec, self._hook = spec, hook
        self._loader: Any = spec.loader

    def create_module(self, spec: ModuleSpec) -> types.ModuleType | None:
        created: types.ModuleType | None = self._loader.create_module(spec)
        return created

    def exec_module(self, module: types.ModuleType) -> None:
        self._spec.loader = module.__loader__ = self._loader
        self._loader.exec_module(module)
        self._hook.loaded()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)
