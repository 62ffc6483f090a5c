"""Load a pipeline file and find its workflows and tasks by name.

The file is imported under its dotted module name (walking up through
packages), the same name Python gives it when it is imported normally or run
as a script, so its tasks keep one name and one cache whichever way they run.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from sterna.core.interface import module_name_for
from sterna.core.task import Task
from sterna.core.workflow import Workflow


class LoadError(Exception):
    """The file cannot be loaded, or has no such workflow or task (a user mistake)."""


def load_module(path: str) -> ModuleType:
    """Import a ``.py`` file as its dotted module name; return the module."""
    file = Path(path)
    if not file.is_file():
        raise LoadError(f"no such file: {path}")
    if file.suffix != ".py":
        raise LoadError(f"expected a .py file, got {path}")
    name = module_name_for(file)
    root = file.resolve().parent
    for _ in range(name.count(".")):
        root = root.parent
    existing = sys.modules.get(name)
    if existing is not None:
        if Path(getattr(existing, "__file__", "") or "").resolve() == file.resolve():
            return existing
        # Another file took this module name earlier in the process: this file wins now.
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]
    if str(root) in sys.path:
        sys.path.remove(str(root))
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    module = importlib.import_module(name)
    if Path(getattr(module, "__file__", "") or "").resolve() != file.resolve():
        raise LoadError(f"{path} is shadowed by {module.__file__}, which has the same module "
                        f"name {name!r}; rename one of them")
    return module


def entities(module: ModuleType) -> dict[str, Workflow[..., Any] | Task[..., Any]]:
    """Workflows and tasks a module defines or imports, by attribute name."""
    return {name: value for name, value in vars(module).items()
            if isinstance(value, (Workflow, Task)) and not name.startswith("_")}


def find(module: ModuleType, name: str) -> Workflow[..., Any] | Task[..., Any]:
    """A workflow or task by attribute name or by full sterna name."""
    found = entities(module)
    if name in found:
        return found[name]
    for value in found.values():
        if value.name == name:
            return value
    listing = ", ".join(sorted(found)) or "none"
    raise LoadError(f"{module.__file__} has no workflow or task named {name!r} "
                    f"(it has: {listing})")
