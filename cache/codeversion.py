"""The automatic code version of a task: a fingerprint of the code it runs.

A task without ``cache_version`` keys its cache on this fingerprint, so editing the
task or a helper it calls invalidates its results, while editing a comment, a
docstring, whitespace or the ``@task(...)`` arguments does not. Components:

- the function's own source without comments, docstrings and decorators;
- transitively, every function and class of the *user's own modules* it reaches:
  globals its code reads (nested lambdas, comprehensions, inner defs included),
  attributes of imported user modules (``helpers.clean``), tasks (their ``.fn``),
  partials, ``__wrapped__`` functions, closure cells and default values;
- the module constants it reads (scalars, enum members, containers of them).

Code in the standard library, site-packages/dist-packages or sterna itself is not
followed: upgrading pandas or sterna must not invalidate every cache (a library's
behaviour is its version's business). Code without source (exec, a REPL) counts by
its bytecode. Labels are kept, so ``diff_components`` can say which helper changed.

What one code object contributes (normalised source, names it reads) is computed
once and cached by the code object itself: a re-imported module has new code
objects and is read afresh. The walk over references runs on every call (tens of
microseconds), since a helper can be re-imported while the task is not.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import dis
import enum
import functools
import inspect
import os
import site
import sys
import sysconfig
import textwrap
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sterna.cache.fingerprint import digest_bytes, digest_parts

__all__ = ["CodeFingerprint", "code_fingerprint", "diff_components"]


@dataclass(frozen=True)
class CodeFingerprint:
    """A task's code version: one digest, and the labelled components it was made of."""

    digest: str  # xxh3_128 hex over the sorted (label, digest) components
    components: dict[str, str]  # label -> digest, e.g. "function etl.clean" -> "9f…"
    sources: dict[str, str]  # label -> normalised source (constants: canonical repr)


@dataclass(frozen=True)
class _CodeInfo:
    """What one code object contributes, computed once per code object."""

    kind: str  # "function" (from source), "bytecode" (no source), "" (not read)
    text: str
    digest: str
    names: tuple[str, ...]  # global names read
    chains: tuple[tuple[str, ...], ...]  # attribute chains rooted at a global: (mod, attr)
    written: frozenset[str]  # globals / closure variables rebound or mutated in place


# A global the code mutates is state, not a constant: counting it would change the
# fingerprint from one call to the next (a list a task appends to, a memo dict).
_MUTATORS = frozenset({"append", "extend", "insert", "pop", "remove", "clear", "update",
                       "add", "discard", "setdefault", "popitem", "sort", "reverse"})
_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLASSDEREF"})
_ATTRS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
_WRITES = frozenset({"STORE_GLOBAL", "DELETE_GLOBAL", "STORE_DEREF", "DELETE_DEREF"})
_IGNORED_OPS = frozenset({"EXTENDED_ARG", "CACHE", "NOP"})
_SCALARS = (type(None), bool, int, float, complex, str, bytes)
_MAX_CONSTANT_ITEMS = 10_000  # a bigger container is data, not configuration
_MISSING = object()

_CODE_CACHE: dict[int, tuple[weakref.ref[types.CodeType], _CodeInfo]] = {}
_CLASS_CACHE: weakref.WeakKeyDictionary[type, tuple[str, str]] = weakref.WeakKeyDictionary()


def code_fingerprint(fn: Callable[..., Any]) -> CodeFingerprint:
    """Fingerprint ``fn`` (function, task, partial or method) and the user code it uses.

    ``fn`` itself is always included, wherever it is defined; what it references is
    followed only into user modules. Deterministic across processes and runs.
    """
    walk = _Walk()
    walk.root(fn)
    return walk.result()


def diff_components(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Human-readable reasons two fingerprints differ: changed, then added, then removed."""
    changed = [label for label in sorted(set(old) & set(new)) if old[label] != new[label]]
    reasons = [f"{label} changed" if label.startswith("constant ") else f"code of {label} changed"
               for label in changed]
    reasons += [f"{label} added" for label in sorted(set(new) - set(old))]
    return reasons + [f"{label} removed" for label in sorted(set(old) - set(new))]


class _Walk:
    """One traversal from a root function over the user code it references."""

    def __init__(self) -> None:
        self.components: dict[str, str] = {}
        self.sources: dict[str, str] = {}
        self.seen: dict[int, Any] = {}  # id -> object, kept alive so that ids stay unique
        self.pending: list[Callable[[], None]] = []
        self.constants: dict[str, tuple[tuple[int, str], str]] = {}
        self.written: set[tuple[int, str]] = set()  # (id of namespace, name)

    def root(self, fn: Any) -> None:
        """Start at ``fn`` (unwrapping tasks, partials and methods): always included."""
        while True:
            if (inner := _task_function(fn)) is not None:
                fn = inner
            elif isinstance(fn, functools.partial):
                fn = fn.func
            elif isinstance(fn, types.MethodType):
                fn = fn.__func__
            else:
                break
        if isinstance(fn, types.FunctionType):
            self.function(fn, force=True)
        elif _is_class(fn):
            self.klass(fn, force=True)
        else:
            self.visit(fn, None, "")
        while self.pending:
            self.pending.pop()()

    def result(self) -> CodeFingerprint:
        """The fingerprint; constants that the walked code writes are left out as state."""
        for label, (key, canon) in self.constants.items():
            if key not in self.written:
                self.components[label] = digest_bytes(canon.encode("utf-8"))
                self.sources[label] = canon
        components = {label: self.components[label] for label in sorted(self.components)}
        sources = {label: self.sources[label] for label in components}
        return CodeFingerprint(digest_parts(list(components.items())), components, sources)

    def first_visit(self, obj: Any) -> bool:
        if id(obj) in self.seen:
            return False
        self.seen[id(obj)] = obj
        return True

    def add(self, label: str, digest: str, text: str) -> None:
        self.components.setdefault(label, digest)
        self.sources.setdefault(label, text)

    def function(self, fn: types.FunctionType, force: bool = False) -> None:
        """Add a user function's component and queue what it references."""
        if not self.first_visit(fn):
            return
        wrapped = _static(fn, "__wrapped__")
        if wrapped is not None:  # a decorated helper: the wrapper may be a library's
            self.visit(wrapped, None, "")
        if not force and not _is_user_path(fn.__code__.co_filename):
            return
        info = _code_info(fn)
        digest = info.digest
        if info.kind == "bytecode":  # defaults live in the defining code, not in fn's
            defaults = _canonical((fn.__defaults__, fn.__kwdefaults__)) or ""
            digest = digest_parts([("code", digest), ("defaults", digest_bytes(defaults.encode()))])
        self.add(f"{info.kind} {_mod(fn.__module__)}.{fn.__qualname__}", digest, info.text)
        self.pending.append(lambda: self.scan(fn, info))

    def scan(self, fn: types.FunctionType, info: _CodeInfo) -> None:
        """Follow the globals, attribute chains, closure cells and defaults of ``fn``."""
        namespace = fn.__globals__
        where = (id(namespace), _mod(str(namespace.get("__name__", fn.__module__))))
        self.written.update((where[0], name) for name in info.written)
        for name in info.names:
            if name in namespace and not _is_dunder(name):
                self.visit(namespace[name], where, name)
        for chain in info.chains:
            self.chain(namespace, chain)
        owner = f"{_mod(fn.__module__)}.{fn.__qualname__}"
        for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell: not assigned yet
                continue
            if var not in info.written and not _is_dunder(var):
                self.visit(value, (id(cell), owner), var)
        for value in (*(fn.__defaults__ or ()), *(fn.__kwdefaults__ or {}).values()):
            self.visit(value, None, "")

    def chain(self, namespace: dict[str, Any], chain: tuple[str, ...]) -> None:
        """``helpers.clean`` or ``pkg.sub.func``: descend through user modules only."""
        obj = namespace.get(chain[0])
        for attr in chain[1:]:
            if not isinstance(obj, types.ModuleType) or not _is_user_module(obj):
                return
            module, obj = obj, inspect.getattr_static(obj, attr, _MISSING)
            if obj is _MISSING or _is_dunder(attr):
                return
            self.visit(obj, (id(module.__dict__), module.__name__), attr)

    def visit(self, value: Any, where: tuple[int, str] | None, name: str) -> None:
        """Classify one referenced object: code to follow, a constant, or neither."""
        if isinstance(value, types.FunctionType):
            self.function(value)
        elif _is_class(value):
            self.klass(value)
        elif isinstance(value, types.ModuleType):
            return  # a module counts only through the attributes read from it
        elif (inner := _task_function(value)) is not None:
            self.visit(inner, None, "")
        elif isinstance(value, functools.partial):
            if self.first_visit(value):
                for part in (value.func, *value.args, *value.keywords.values()):
                    self.visit(part, None, "")
                self.constant(where, name, (value.args, value.keywords))
        elif isinstance(value, (types.MethodType, staticmethod, classmethod)):
            self.visit(value.__func__, None, "")
            self.visit(getattr(value, "__self__", None), None, "")
        elif not self.constant(where, name, value):
            wrapped = _static(value, "__wrapped__")
            if wrapped is not None:  # e.g. functools.lru_cache around a user function
                self.visit(wrapped, None, "")
            self.klass(type(value))  # an instance of a user class: follow its class

    def constant(self, where: tuple[int, str] | None, name: str, value: Any) -> bool:
        """Record ``value`` as the constant ``owner.name`` if it is one."""
        canon = None if where is None else _canonical(value)
        if canon is not None and where is not None:
            key, owner = where
            self.constants.setdefault(f"constant {owner}.{name}", ((key, name), canon))
        return canon is not None

    def klass(self, cls: type, force: bool = False) -> None:
        """Add a user class (its whole source), follow its methods and its user bases."""
        if not self.first_visit(cls) or not (force or _is_user_class(cls)):
            return
        text, digest = _class_info(cls)
        self.add(f"class {_mod(cls.__module__)}.{cls.__qualname__}", digest, text)
        for base in cls.__mro__[1:]:
            self.klass(base)
        for member in list(vars(cls).values()):
            for fn in _member_functions(member):
                if _is_user_path(fn.__code__.co_filename):
                    self.pending.append(functools.partial(self.scan, fn, _code_info(fn, False)))


def _task_function(value: Any) -> Any:
    """The ``.fn`` of a task-like object (a sterna Task or Workflow), else None."""
    if isinstance(value, (types.FunctionType, types.ModuleType)) or _is_class(value):
        return None
    fn = _static(value, "fn")
    return fn if isinstance(fn, types.FunctionType) else None


def _static(value: Any, name: str) -> Any:
    """An attribute without running descriptors or ``__getattr__`` (no side effects)."""
    try:
        return inspect.getattr_static(value, name, None)
    except Exception:  # an exotic proxy object: it simply has nothing to follow
        return None


def _member_functions(member: Any) -> list[types.FunctionType]:
    """The plain functions behind a class attribute (method, static, class, property)."""
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    parts = [member.fget, member.fset, member.fdel] if isinstance(member, property) else [member]
    return [f for f in parts if isinstance(f, types.FunctionType)]


def _is_class(value: Any) -> bool:
    # Not isinstance(value, type): on 3.10, list[int] passes that test.
    return issubclass(type(value), type)


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


# -- which code is the user's ---------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _is_user_path(path: str) -> bool:
    """False for the standard library, site-packages and sterna itself; True otherwise,
    also for code without a real file (``<string>`` from exec, ``<stdin>``)."""
    if not path or (path.startswith("<") and path.endswith(">")):
        return True
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return not any(_inside(real, root) for root in _library_roots()) and not _in_sterna(real)


@functools.lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    """Directories of the standard library and of installed packages."""
    paths = [sysconfig.get_paths(), sysconfig.get_paths(
        vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})]
    roots = {p[key] for p in paths for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update([os.path.dirname(os.__file__), *getattr(site, "getsitepackages", list)()])
    return tuple(sorted(os.path.realpath(r) for r in roots if r))


@functools.lru_cache(maxsize=1)
def _sterna_dir() -> str:
    import sterna

    return os.path.dirname(os.path.realpath(sterna.__file__))


def _in_sterna(real: str) -> bool:
    """Whether a file belongs to the sterna package: under its directory, through package
    directories only. In a checkout the repository root is the package, but ``tests/``
    and ``examples/`` there are not packages (no ``__init__.py``): they are user code."""
    root = _sterna_dir()
    folder = os.path.dirname(real)
    if not _inside(folder, root):
        return False
    while folder != root:
        if not os.path.exists(os.path.join(folder, "__init__.py")):
            return False
        folder = os.path.dirname(folder)
    return True


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _is_user_module(module: types.ModuleType) -> bool:
    path = getattr(module, "__file__", None)
    if path:
        return _is_user_path(path)
    origin = getattr(getattr(module, "__spec__", None), "origin", None)
    return module.__name__ not in sys.builtin_module_names and origin not in (
        "built-in", "frozen")


def _is_user_class(cls: type) -> bool:
    module = sys.modules.get(cls.__module__)
    if module is None:  # e.g. a class made by exec in a namespace of its own
        return cls.__module__ not in sys.builtin_module_names
    return _is_user_module(module)


# -- per-code information -------------------------------------------------------------
def _code_info(fn: types.FunctionType, source: bool = True) -> _CodeInfo:
    """The information of ``fn``'s code object, cached by the code object's identity.

    ``source=False`` (methods of a class whose whole source is a component already)
    skips reading the source, which is most of the first call's cost.
    """
    code = fn.__code__
    hit = _CODE_CACHE.get(id(code))
    if hit is not None and hit[0]() is code and (hit[1].kind or not source):
        return hit[1]
    names: dict[str, None] = {}
    chains: dict[tuple[str, ...], None] = {}
    written: set[str] = set()
    stack = [code]
    while stack:  # the code and, recursively, lambdas, comprehensions and inner defs
        current = stack.pop()
        _scan_instructions(current, names, chains, written)
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    parsed = _function_source(fn) if source else ("", set())
    if not source:
        info = _CodeInfo("", "", "", tuple(names), tuple(chains), frozenset(written))
    elif parsed is None:
        info = _CodeInfo("bytecode", _bytecode_text(code), _bytecode_digest(code),
                         tuple(names), tuple(chains), frozenset(written))
    else:
        text, ast_written = parsed
        info = _CodeInfo("function", text, digest_bytes(text.encode("utf-8")), tuple(names),
                         tuple(chains), frozenset(written | ast_written))

    def forget(ref: weakref.ref[types.CodeType], key: int = id(code)) -> None:
        if _CODE_CACHE.get(key, (None,))[0] is ref:
            del _CODE_CACHE[key]

    _CODE_CACHE[id(code)] = (weakref.ref(code, forget), info)
    return info


def _scan_instructions(code: types.CodeType, names: dict[str, None],
                       chains: dict[tuple[str, ...], None], written: set[str]) -> None:
    """Globals read, attribute chains rooted at globals, and names written or mutated."""
    chain: list[str] = []
    from_global = False
    recent = [("", ""), ("", "")]  # the last two significant instructions
    for ins in [*dis.get_instructions(code), None]:
        op = "" if ins is None else ins.opname
        if op in _IGNORED_OPS:
            continue
        if chain and ins is not None and op in _ATTRS:
            chain.append(str(ins.argval))
            continue
        if len(chain) > 1:
            if from_global:
                chains.setdefault(tuple(chain), None)
            if chain[1] in _MUTATORS:  # CALLS.append(x)
                written.add(chain[0])
        chain = []
        if ins is None:
            break
        arg = str(ins.argval)
        if op in _LOADS:
            from_global = op in ("LOAD_GLOBAL", "LOAD_NAME")
            chain = [arg]
            if from_global:
                names.setdefault(arg, None)
        elif op in _WRITES:
            written.add(arg)
        elif op in ("STORE_SUBSCR", "DELETE_SUBSCR") and recent[0][0] in _LOADS:
            written.add(recent[0][1])  # X[k] = v loads v, X, k, then stores
        recent = [recent[1], (op, arg)]


def _function_source(fn: types.FunctionType) -> tuple[str, set[str]] | None:
    """Source without comments, docstrings and decorators, and the names it writes;
    None when there is no source (exec, a REPL) or it does not hold this function."""
    code = fn.__code__
    tree = _parsed_source(fn)
    if tree is None:
        return None
    node: ast.AST | None
    if code.co_name == "<lambda>":
        node = _pick_lambda(tree, code)
    else:
        node = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and n.name == code.co_name), None)
        if node is not None:
            node.decorator_list = []
    if node is None:
        return None
    _strip_docstrings(node)
    written = set()
    for sub in ast.walk(node):  # global/nonlocal names, and X[k] = v / del X[k]
        if isinstance(sub, (ast.Global, ast.Nonlocal)):
            written.update(sub.names)
        elif (isinstance(sub, ast.Subscript) and isinstance(sub.ctx, (ast.Store, ast.Del))
              and isinstance(sub.value, ast.Name)):
            written.add(sub.value.id)
    return ast.unparse(node), written


_module_trees: dict[str, tuple[tuple[int, int], dict[int, ast.AST]]] = {}


def _def_from_module(fn: Any) -> ast.AST | None:
    """A function's ``def`` node, found by line in its module's parsed file (cached).

    Parsing a file once is much cheaper than ``inspect.getsource`` per function,
    which tokenizes the file again for every block it extracts.
    """
    code = getattr(fn, "__code__", None)
    if code is None or code.co_name == "<lambda>":
        return None
    filename = code.co_filename
    try:
        stat = os.stat(filename)
    except OSError:
        return None
    stamp = (stat.st_size, stat.st_mtime_ns)
    cached = _module_trees.get(filename)
    if cached is None or cached[0] != stamp:
        try:
            with open(filename, encoding="utf-8") as handle:
                tree = ast.parse(handle.read())
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            return None
        index: dict[int, ast.AST] = {}
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                index[first] = node
        cached = _module_trees[filename] = (stamp, index)
    node = cached[1].get(code.co_firstlineno)
    if node is None or getattr(node, "name", None) != code.co_name:
        return None
    return copy.deepcopy(node)  # callers strip decorators and docstrings in place


def _parsed_source(obj: Any) -> ast.Module | None:
    """The parsed source block of a function or class, which may be indented."""
    node = _def_from_module(obj)
    if node is not None:
        return ast.Module(body=[node], type_ignores=[])  # type: ignore[list-item]
    try:
        text = inspect.getsource(obj)
    except Exception:  # no file, a stale file, a REPL: the caller falls back to bytecode
        return None
    try:
        return ast.parse(textwrap.dedent(text))
    except SyntaxError:
        pass
    try:  # dedent gives up when a multi-line string sits left of the block
        block = ast.parse("if 1:\n" + text).body[0]
    except SyntaxError:
        return None
    return ast.Module(body=block.body, type_ignores=[]) if isinstance(block, ast.If) else None


def _pick_lambda(tree: ast.Module, code: types.CodeType) -> ast.AST:
    """The lambda ``code`` came from, within its source line(s)."""
    params = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    matching = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda) and tuple(
        a.arg for a in (*n.args.posonlyargs, *n.args.args, *n.args.kwonlyargs)) == params]
    return matching[0] if len(matching) == 1 else tree  # ambiguous: the whole statement


def _strip_docstrings(root: ast.AST) -> None:
    for node in ast.walk(root):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                node.body = node.body[1:] or [ast.Pass()]


def _bytecode_digest(code: types.CodeType) -> str:
    """A digest of a code object with no addresses, ids or line numbers in it."""
    consts = [f"code {_bytecode_digest(c)}" if isinstance(c, types.CodeType)
              else _canonical(c) or f"<{type(c).__qualname__}>" for c in code.co_consts]
    header = (code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount,
              code.co_flags, code.co_names, code.co_varnames, code.co_freevars,
              code.co_cellvars, consts)
    return digest_bytes(repr(header).encode("utf-8") + b"\0" + code.co_code)


def _bytecode_text(code: types.CodeType) -> str:
    """A readable stand-in for the missing source: the instructions, without offsets."""
    lines = [f"# source unavailable; bytecode of {getattr(code, 'co_qualname', code.co_name)}"]
    lines += [f"{i.opname} {i.argrepr}".rstrip() for i in dis.get_instructions(code)
              if i.opname not in _IGNORED_OPS]
    return "\n".join(lines)


def _class_info(cls: type) -> tuple[str, str]:
    """(normalised source, digest) of a class, cached per class object. Decorators stay
    (``@dataclass(frozen=True)`` matters); docstrings go. Without source, a summary of
    its own attributes stands in, methods by bytecode."""
    hit = _CLASS_CACHE.get(cls)
    if hit is not None:
        return hit
    tree = _parsed_source(cls)
    node = None if tree is None else next((n for n in tree.body if isinstance(n, ast.ClassDef)
                                           and n.name == cls.__name__), None)
    if node is not None:
        _strip_docstrings(node)
        text = ast.unparse(node)
    else:  # no source: its bases and own attributes stand in, functions by bytecode
        bases = ", ".join(f"{b.__module__}.{b.__qualname__}" for b in cls.__bases__)
        text = "\n".join([f"# source unavailable\nclass {cls.__qualname__}({bases}):", *(
            f"    {name} = {_member_text(member)}" for name, member in sorted(vars(cls).items())
            if name not in ("__dict__", "__weakref__", "__doc__", "__module__"))])
    result = (text, digest_bytes(text.encode("utf-8")))
    with contextlib.suppress(TypeError):  # a class that cannot be weakly referenced
        _CLASS_CACHE[cls] = result
    return result


def _member_text(member: Any) -> str:
    functions = _member_functions(member)
    if functions:
        return " ".join(f"code {_bytecode_digest(f.__code__)}" for f in functions)
    return _canonical(member) or f"<{type(member).__name__}>"


# -- constants ------------------------------------------------------------------------
class _TooBig(Exception):
    """More items than a configuration constant plausibly has."""


def _canonical(value: Any) -> str | None:
    """Canonical repr of a constant, or None if ``value`` is not one.

    Constants are None, bools, ints, floats, strings, bytes, enum members, and tuples,
    lists, sets, frozensets and dicts of them. Dict keys and set items are sorted, so
    the repr depends neither on insertion order nor on hash randomisation.
    """
    try:
        return _canon(value, [_MAX_CONSTANT_ITEMS], 0)
    except _TooBig:
        return None


def _canon(value: Any, budget: list[int], depth: int) -> str | None:
    budget[0] -= 1
    if budget[0] < 0 or depth > 32:
        raise _TooBig
    kind = type(value)
    if isinstance(value, enum.Enum):
        inner = _canon(value.value, budget, depth + 1)
        name = f"{kind.__module__}.{kind.__qualname__}.{value.name}"
        return f"<{name}: {inner}>" if inner is not None else f"<{name}>"
    if kind in _SCALARS:
        return repr(value)
    if kind not in (tuple, list, set, frozenset, dict):
        return None
    parts = [_canon(item, budget, depth + 1) for pair in value.items() for item in pair] if (
        kind is dict) else [_canon(item, budget, depth + 1) for item in value]
    texts = [text for text in parts if text is not None]
    if len(texts) < len(parts):
        return None
    if kind is dict:
        return "{" + ", ".join(sorted(f"{k}: {v}" for k, v in zip(texts[::2], texts[1::2]))) + "}"
    body = ", ".join(sorted(texts) if kind in (set, frozenset) else texts)
    if kind is tuple:
        return f"({body},)"
    if kind is list:
        return f"[{body}]"
    return f"{{{body}}}" if kind is set and texts else f"{kind.__name__}({{{body}}})"


def _mod(name: str) -> str:
    """A module's name in labels: a script run as ``__main__`` is named by its file.

    The same file run as ``python file.py`` and loaded by ``sterna run`` must
    give the same fingerprint, or the two would never share a cache entry.
    """
    if name != "__main__":
        return name
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if not main_file:
        return name
    from pathlib import Path

    from sterna.core.interface import module_name_for

    return module_name_for(Path(main_file))
