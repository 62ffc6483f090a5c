"""The automatic code version of a task: what changes it, what does not, and why it changed.

Most tests write real modules into ``tmp_path``, import them, edit them on disk, import
them again and compare fingerprints, since that is what users do between two runs.
"""

import enum
import functools
import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sterna
from sterna.cache.codeversion import CodeFingerprint, code_fingerprint, diff_components
from sterna.cache.fingerprint import digest_bytes, digest_parts

HEX32 = re.compile(r"[0-9a-f]{32}")


class Lab:
    """Writes modules into a directory on sys.path, imports and re-imports them."""

    _clock = 1_600_000_000  # every write gets a distinct mtime, so no stale source is read

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, source: str) -> Path:
        path = self.root / (name.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        Lab._clock += 10
        os.utime(path, ns=(Lab._clock * 10**9, Lab._clock * 10**9))
        importlib.invalidate_caches()
        return path

    def load(self, name: str) -> types.ModuleType:
        """A fresh import of ``name`` (new module object, new function objects)."""
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]
        return importlib.import_module(name)

    def reload(self, name: str) -> types.ModuleType:
        """``importlib.reload``: the same module object, re-executed in place."""
        return importlib.reload(sys.modules[name])

    def cleanup(self) -> None:
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None) or ""
            if path.startswith(str(self.root)):
                del sys.modules[name]


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    """A scratch directory of user modules, importable by name."""
    root = tmp_path / "src"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    helper = Lab(root)
    yield helper
    helper.cleanup()


def fp(obj: Callable[..., Any]) -> CodeFingerprint:
    return code_fingerprint(obj)


# -- shape of the result ----------------------------------------------------------------
BASE = """\
    import sterna

    @sterna.task(cache=True)
    def clean(x: int) -> int:
        \"\"\"Add one.\"\"\"
        # the one thing this task does
        return x + 1
    """


def test_fingerprint_has_hex_digests_and_normalised_source(lab: Lab) -> None:
    lab.write("cv_shape", BASE)
    result = fp(lab.load("cv_shape").clean)
    assert HEX32.fullmatch(result.digest)
    assert list(result.components) == ["function cv_shape.clean"]
    assert all(HEX32.fullmatch(d) for d in result.components.values())
    assert result.sources == {
        "function cv_shape.clean": "def clean(x: int) -> int:\n    return x + 1"}
    assert result.digest == digest_parts(sorted(result.components.items()))
    assert result.components["function cv_shape.clean"] == digest_bytes(
        b"def clean(x: int) -> int:\n    return x + 1")


def test_task_object_and_its_function_fingerprint_alike(lab: Lab) -> None:
    lab.write("cv_shape", BASE)
    module = lab.load("cv_shape")
    assert isinstance(module.clean, sterna.Task)
    assert fp(module.clean) == fp(module.clean.fn)


# -- edits that do not matter -------------------------------------------------------------
COSMETIC_EDITS = {
    "comment": BASE.replace("# the one thing this task does", "# something else entirely"),
    "docstring": BASE.replace('"""Add one."""', '"""Add one, and say so at length."""'),
    "no docstring": BASE.replace('    """Add one."""\n', ""),
    "whitespace": BASE.replace("x + 1", "x+1").replace("import sterna", "import sterna\n\n\n"),
    "decorator arguments": BASE.replace("(cache=True)", "(cache=True, retries=3, name='c')"),
    "bare decorator": BASE.replace("@sterna.task(cache=True)", "@sterna.task"),
    "type-ignore comment": BASE.replace("return x + 1", "return x + 1  # type: ignore"),
}


@pytest.mark.parametrize("edit", sorted(COSMETIC_EDITS))
def test_cosmetic_edit_keeps_the_digest(lab: Lab, edit: str) -> None:
    assert COSMETIC_EDITS[edit] != BASE
    lab.write("cv_cosmetic", BASE)
    before = fp(lab.load("cv_cosmetic").clean)
    lab.write("cv_cosmetic", COSMETIC_EDITS[edit])
    after = fp(lab.load("cv_cosmetic").clean)
    assert after.digest == before.digest
    assert diff_components(before.components, after.components) == []


def test_docstrings_of_nested_functions_and_classes_are_dropped(lab: Lab) -> None:
    source = """\
        def outer(x: int) -> int:
            def inner(y: int) -> int:
                \"\"\"{doc}\"\"\"
                return y * 2

            class Box:
                \"\"\"{doc}\"\"\"
                value = x

            return inner(Box.value)
        """
    lab.write("cv_nested_doc", source.format(doc="one"))
    before = fp(lab.load("cv_nested_doc").outer)
    lab.write("cv_nested_doc", source.format(doc="two, longer"))
    after = fp(lab.load("cv_nested_doc").outer)
    assert after.digest == before.digest
    assert '"""' not in after.sources["function cv_nested_doc.outer"]


# -- edits that matter --------------------------------------------------------------------
def test_body_edit_changes_the_digest(lab: Lab) -> None:
    lab.write("cv_body", BASE)
    before = fp(lab.load("cv_body").clean)
    lab.write("cv_body", BASE.replace("x + 1", "x + 2"))
    after = fp(lab.load("cv_body").clean)
    assert after.digest != before.digest
    assert diff_components(before.components, after.components) == [
        "code of function cv_body.clean changed"]


def test_same_module_helper_edit_is_named(lab: Lab) -> None:
    source = """\
        import sterna

        def normalise(text: str) -> str:
            return text.strip().{method}()

        @sterna.task
        def clean(text: str) -> str:
            return normalise(text)
        """
    lab.write("cv_same", source.format(method="lower"))
    before = fp(lab.load("cv_same").clean)
    assert set(before.components) == {"function cv_same.clean", "function cv_same.normalise"}
    lab.write("cv_same", source.format(method="upper"))
    after = fp(lab.load("cv_same").clean)
    assert diff_components(before.components, after.components) == [
        "code of function cv_same.normalise changed"]


HELPERS = """\
    THRESHOLD = 3

    def normalise(text: str) -> str:
        return text.strip()[:THRESHOLD]

    def unused(text: str) -> str:
        return text
    """


def test_other_module_helper_edit_via_attribute_access(lab: Lab) -> None:
    lab.write("cv_helpers_a", HELPERS)
    lab.write("cv_etl_a", """\
        import cv_helpers_a
        import sterna

        @sterna.task
        def clean(text: str) -> str:
            return cv_helpers_a.normalise(text)
        """)
    task = lab.load("cv_etl_a").clean
    before = fp(task)
    assert set(before.components) == {"function cv_etl_a.clean",
                                      "function cv_helpers_a.normalise",
                                      "constant cv_helpers_a.THRESHOLD"}
    lab.write("cv_helpers_a", HELPERS.replace("text.strip()", "text.lstrip()"))
    lab.reload("cv_helpers_a")  # the task's module is not re-imported
    after = fp(task)
    assert diff_components(before.components, after.components) == [
        "code of function cv_helpers_a.normalise changed"]


def test_other_module_helper_edit_via_from_import(lab: Lab) -> None:
    lab.write("cv_helpers_b", HELPERS)
    etl = """\
        from cv_helpers_b import normalise
        import sterna

        @sterna.task
        def clean(text: str) -> str:
            return normalise(text)
        """
    lab.write("cv_etl_b", etl)
    before = fp(lab.load("cv_etl_b").clean)
    lab.write("cv_helpers_b", HELPERS.replace("THRESHOLD]", "THRESHOLD].upper()"))
    lab.load("cv_helpers_b")
    after = fp(lab.load("cv_etl_b").clean)
    assert diff_components(before.components, after.components) == [
        "code of function cv_helpers_b.normalise changed"]
    unchanged = fp(lab.load("cv_etl_b").clean)
    assert unchanged.digest == after.digest


def test_helper_of_a_helper_is_followed_transitively(lab: Lab) -> None:
    source = """\
        import sterna

        def level2(x: int) -> int:
            return x * {factor}

        def level1(x: int) -> int:
            return level2(x) + 1

        @sterna.task
        def top(x: int) -> int:
            return level1(x)
        """
    lab.write("cv_trans", source.format(factor=2))
    before = fp(lab.load("cv_trans").top)
    assert "function cv_trans.level2" in before.components
    lab.write("cv_trans", source.format(factor=5))
    after = fp(lab.load("cv_trans").top)
    assert diff_components(before.components, after.components) == [
        "code of function cv_trans.level2 changed"]


def test_attribute_chains_through_packages_pick_only_what_is_read(lab: Lab) -> None:
    lab.write("cv_pkg.__init__", "")
    lab.write("cv_pkg.sub", "def used(x: int) -> int:\n    return x\n\n"
                            "def unused(x: int) -> int:\n    return -x\n")
    lab.write("cv_chain", """\
        import cv_pkg.sub

        def step(x: int) -> int:
            return cv_pkg.sub.used(x)
        """)
    module = lab.load("cv_chain")
    before = fp(module.step)
    assert set(before.components) == {"function cv_chain.step", "function cv_pkg.sub.used"}
    lab.write("cv_pkg.sub", "def used(x: int) -> int:\n    return x + 1\n")
    lab.reload("cv_pkg.sub")
    assert diff_components(before.components, fp(module.step).components) == [
        "code of function cv_pkg.sub.used changed"]


# -- constants ------------------------------------------------------------------------------
CONSTANTS = """\
    import cv_config

    THRESHOLD = {threshold}
    WEIGHTS = {weights}
    NAMES = {names}

    def score(x: float) -> float:
        if x > THRESHOLD and cv_config.LIMIT:
            return sum(WEIGHTS.values()) * len(NAMES)
        return 0.0
    """


def _constants(lab: Lab, threshold: str = "10", weights: str = "{'a': 1, 'b': 2}",
               names: str = "frozenset({'x', 'y', 'z'})", limit: str = "5") -> CodeFingerprint:
    lab.write("cv_config", f"LIMIT = {limit}\n")
    lab.load("cv_config")
    lab.write("cv_const", CONSTANTS.format(threshold=threshold, weights=weights, names=names))
    return fp(lab.load("cv_const").score)


def test_constants_are_components_with_their_repr(lab: Lab) -> None:
    result = _constants(lab)
    assert result.sources["constant cv_const.THRESHOLD"] == "10"
    assert result.sources["constant cv_const.WEIGHTS"] == "{'a': 1, 'b': 2}"
    assert result.sources["constant cv_const.NAMES"] == "frozenset({'x', 'y', 'z'})"
    assert result.sources["constant cv_config.LIMIT"] == "5"


def test_constant_change_is_named(lab: Lab) -> None:
    before = _constants(lab)
    after = _constants(lab, threshold="11")
    assert diff_components(before.components, after.components) == [
        "constant cv_const.THRESHOLD changed"]
    other_module = _constants(lab, limit="6")
    assert diff_components(before.components, other_module.components) == [
        "constant cv_config.LIMIT changed"]


def test_constant_repr_is_canonical_and_typed(lab: Lab) -> None:
    base = _constants(lab).digest
    assert _constants(lab, weights="{'b': 2, 'a': 1}").digest == base
    assert _constants(lab, names="frozenset({'z', 'y', 'x'})").digest == base
    digests = {_constants(lab, threshold=value).digest for value in ("1", "1.0", "True", "'1'")}
    assert len(digests) == 4
    assert _constants(lab, weights="{'a': 1, 'b': 3}").digest != base


def test_non_constant_globals_are_not_components(lab: Lab) -> None:
    lab.write("cv_objects", """\
        import threading

        import pyarrow as pa

        ARRAY = pa.array(range(10))
        LOCK = threading.Lock()
        MARKER = object()
        MIXED = [1, object()]
        BIG = list(range(50_000))

        def step(x: int) -> int:
            with LOCK:
                return x if MARKER and MIXED and BIG and len(ARRAY) else 0
        """)
    assert list(fp(lab.load("cv_objects").step).components) == ["function cv_objects.step"]


def test_enum_members_and_classes(lab: Lab) -> None:
    source = """\
        import enum

        class Mode(enum.Enum):
            FAST = {fast}
            SLOW = 2

        DEFAULT = Mode.FAST

        def pick(x: int) -> int:
            return x if DEFAULT is Mode.FAST else -x
        """
    lab.write("cv_enum", source.format(fast=1))
    before = fp(lab.load("cv_enum").pick)
    assert before.sources["constant cv_enum.DEFAULT"] == "<cv_enum.Mode.FAST: 1>"
    assert "class cv_enum.Mode" in before.components
    lab.write("cv_enum", source.format(fast=3))
    after = fp(lab.load("cv_enum").pick)
    assert diff_components(before.components, after.components) == [
        "code of class cv_enum.Mode changed", "constant cv_enum.DEFAULT changed"]


def test_mutable_state_the_code_writes_is_not_a_constant(lab: Lab) -> None:
    lab.write("cv_state", """\
        CALLS = []
        SEEN = {}
        COUNT = 0

        def step(x: int) -> int:
            global COUNT
            COUNT += 1
            CALLS.append(x)
            SEEN[x] = True
            return x
        """)
    step = lab.load("cv_state").step
    before = fp(step)
    step(1)
    step(2)
    after = fp(step)
    assert after == before
    assert list(after.components) == ["function cv_state.step"]


def test_closure_state_the_task_appends_to_is_not_a_constant() -> None:
    calls: list[int] = []

    @sterna.task
    def record(x: int) -> int:
        calls.append(x)
        return x

    before = fp(record)
    record(x=1)
    assert fp(record) == before
    assert not any("calls" in label for label in before.components)


# -- what is not followed -------------------------------------------------------------------
def test_library_functions_are_not_followed(lab: Lab) -> None:
    lab.write("cv_lib", """\
        import json
        from collections import OrderedDict
        from json import dumps

        import pyarrow as pa
        import pyarrow.compute as pc

        from sterna.cache.fingerprint import digest_bytes

        def total(values: list[int]) -> str:
            result = pc.sum(pa.array(values)).as_py()
            text = json.dumps(OrderedDict(total=result)) + dumps(result)
            return digest_bytes(text.encode())
        """)
    result = fp(lab.load("cv_lib").total)
    assert list(result.components) == ["function cv_lib.total"]


def _local_helper(x: int) -> int:
    return x * 7


@sterna.task
def _test_dir_task(x: int) -> int:
    return _local_helper(x)


def test_modules_in_the_checkouts_tests_folder_are_user_code() -> None:
    """The repository root is the sterna package, but tests/ (no __init__.py) is not part
    of it: a helper defined here is followed like any user helper."""
    module = _local_helper.__module__
    assert set(fp(_test_dir_task).components) == {f"function {module}._test_dir_task",
                                                  f"function {module}._local_helper"}


# -- cycles, closures, lambdas, classes, wrappers ----------------------------------------
def test_recursion_and_cycles_terminate(lab: Lab) -> None:
    source = """\
        def is_even(n: int) -> bool:
            return True if n == 0 else is_odd(n - 1)

        def is_odd(n: int) -> bool:
            return False if n == 0 else is_even(n - {step})

        def fact(n: int) -> int:
            return 1 if n <= 1 else n * fact(n - 1)

        def entry(n: int) -> bool:
            return is_even(fact(n))
        """
    lab.write("cv_cycle", source.format(step=1))
    before = fp(lab.load("cv_cycle").entry)
    assert set(before.components) == {f"function cv_cycle.{name}"
                                      for name in ("entry", "is_even", "is_odd", "fact")}
    lab.write("cv_cycle", source.format(step="(1)"))
    assert fp(lab.load("cv_cycle").entry) == before
    lab.write("cv_cycle", source.format(step=2))
    after = fp(lab.load("cv_cycle").entry)
    assert diff_components(before.components, after.components) == [
        "code of function cv_cycle.is_odd changed"]


CLOSURES = """\
    def helper(x: int) -> int:
        return x + {offset}

    def make(n: int):
        h = helper
        def inner(x: int) -> int:
            return h(x) * n
        return inner

    square = lambda x: x * {power}

    def uses_lambdas(xs: list[int]) -> list[int]:
        return sorted(map(lambda v: square(v), xs), key=lambda v: -helper(v))

    step3 = make(3)
    step4 = make(4)
    """


def test_closures_follow_cells_and_count_captured_constants(lab: Lab) -> None:
    lab.write("cv_closure", CLOSURES.format(offset=1, power=2))
    module = lab.load("cv_closure")
    three, four = fp(module.step3), fp(module.step4)
    assert set(three.components) == {"function cv_closure.make.<locals>.inner",
                                     "function cv_closure.helper",
                                     "constant cv_closure.make.<locals>.inner.n"}
    assert three.sources["constant cv_closure.make.<locals>.inner.n"] == "3"
    assert diff_components(three.components, four.components) == [
        "constant cv_closure.make.<locals>.inner.n changed"]
    lab.write("cv_closure", CLOSURES.format(offset=9, power=2))
    edited = fp(lab.load("cv_closure").step3)
    assert diff_components(three.components, edited.components) == [
        "code of function cv_closure.helper changed"]


def test_lambdas_inside_and_as_helpers(lab: Lab) -> None:
    lab.write("cv_lambda", CLOSURES.format(offset=1, power=2))
    before = fp(lab.load("cv_lambda").uses_lambdas)
    assert set(before.components) == {"function cv_lambda.uses_lambdas",
                                      "function cv_lambda.<lambda>",
                                      "function cv_lambda.helper"}
    assert before.sources["function cv_lambda.<lambda>"] == "lambda x: x * 2"
    lab.write("cv_lambda", CLOSURES.format(offset=1, power=3))
    after = fp(lab.load("cv_lambda").uses_lambdas)
    assert diff_components(before.components, after.components) == [
        "code of function cv_lambda.<lambda> changed"]


CLASSES = """\
    import sterna

    def scale(x: int, k: int) -> int:
        return x * k

    class Scaler:
        \"\"\"Multiplies.\"\"\"

        def __init__(self, k: int) -> None:
            self.k = k

        def apply(self, x: int) -> int:
            \"\"\"{doc}\"\"\"
            return scale(x, self.k) + {extra}

    SCALER = Scaler(2)

    @sterna.task
    def by_class(x: int) -> int:
        return Scaler(2).apply(x)

    @sterna.task
    def by_instance(x: int) -> int:
        return SCALER.apply(x)
    """


def test_methods_of_user_classes_are_followed(lab: Lab) -> None:
    lab.write("cv_cls", CLASSES.format(doc="one", extra=0))
    module = lab.load("cv_cls")
    before = fp(module.by_class)
    assert set(before.components) == {"function cv_cls.by_class", "class cv_cls.Scaler",
                                      "function cv_cls.scale"}
    assert "Multiplies" not in before.sources["class cv_cls.Scaler"]
    by_instance = set(fp(module.by_instance).components)
    assert {"class cv_cls.Scaler", "function cv_cls.scale"} <= by_instance
    lab.write("cv_cls", CLASSES.format(doc="two", extra=0))
    assert fp(lab.load("cv_cls").by_class) == before
    lab.write("cv_cls", CLASSES.format(doc="one", extra=1))
    after = lab.load("cv_cls")
    assert diff_components(before.components, fp(after.by_class).components) == [
        "code of class cv_cls.Scaler changed"]
    assert "code of class cv_cls.Scaler changed" in diff_components(
        fp(module.by_instance).components, fp(after.by_instance).components)


def test_tasks_partials_and_decorated_helpers_are_followed(lab: Lab) -> None:
    source = """\
        import functools
        import sterna

        def logged(f):
            @functools.wraps(f)
            def wrapper(*args, **kwargs):
                return f(*args, **kwargs)
            return wrapper

        @logged
        def tidy(text: str) -> str:
            return text.{method}()

        @functools.lru_cache(maxsize=None)
        def cached(text: str) -> str:
            return text * 2

        def clean(text: str, strict: bool) -> str:
            return text if strict else text.strip()

        clean_strict = functools.partial(clean, strict={strict})

        @sterna.task
        def inner(text: str) -> str:
            return tidy(text)

        @sterna.task
        def outer(text: str) -> str:
            return inner(clean_strict(cached(text)))
        """
    lab.write("cv_wrap", source.format(method="strip", strict=True))
    before = fp(lab.load("cv_wrap").outer)
    assert {"function cv_wrap.inner", "function cv_wrap.tidy", "function cv_wrap.cached",
            "function cv_wrap.clean", "constant cv_wrap.clean_strict"} <= set(before.components)
    lab.write("cv_wrap", source.format(method="lower", strict=True))
    edited = fp(lab.load("cv_wrap").outer)
    assert diff_components(before.components, edited.components) == [
        "code of function cv_wrap.tidy changed"]
    lab.write("cv_wrap", source.format(method="strip", strict=False))
    rebound = fp(lab.load("cv_wrap").outer)
    assert diff_components(before.components, rebound.components) == [
        "constant cv_wrap.clean_strict changed"]


# -- no source -------------------------------------------------------------------------------
def _exec_function(source: str, module: str = "cv_exec") -> Callable[..., Any]:
    namespace: dict[str, Any] = {"__name__": module, "FACTOR": 3}
    exec(textwrap.dedent(source), namespace)
    return namespace["made"]  # type: ignore[no-any-return]


EXEC_SOURCE = """\
    def made(x, k=1):
        return x * FACTOR + k
    """


def test_exec_defined_function_falls_back_to_bytecode() -> None:
    result = fp(_exec_function(EXEC_SOURCE))
    assert set(result.components) == {"bytecode cv_exec.made", "constant cv_exec.FACTOR"}
    assert result.sources["bytecode cv_exec.made"].startswith("# source unavailable")
    assert fp(_exec_function(EXEC_SOURCE)) == result
    assert fp(_exec_function(EXEC_SOURCE.replace("# ", ""))) == result
    assert diff_components(result.components, fp(_exec_function(
        EXEC_SOURCE.replace("+ k", "- k"))).components) == ["code of bytecode cv_exec.made changed"]
    assert fp(_exec_function(EXEC_SOURCE.replace("k=1", "k=2"))).digest != result.digest


def test_exec_defined_helper_of_a_module_is_followed(lab: Lab) -> None:
    source = """\
        exec("def made(x):\\n    return x + {n}\\n")

        def step(x: int) -> int:
            return made(x)
        """
    lab.write("cv_exec_helper", source.format(n=1))
    before = fp(lab.load("cv_exec_helper").step)
    assert "bytecode cv_exec_helper.made" in before.components
    lab.write("cv_exec_helper", source.format(n=2))
    after = fp(lab.load("cv_exec_helper").step)
    assert diff_components(before.components, after.components) == [
        "code of bytecode cv_exec_helper.made changed"]


def test_indented_function_with_flush_left_string_keeps_its_source(lab: Lab) -> None:
    lab.write("cv_flush", '''\
        def outer():
            def inner(x: str) -> str:
                """Doc."""
                return x + """
        tail"""
            return inner

        inner = outer()
        ''')
    result = fp(lab.load("cv_flush").inner)
    assert result.sources == {
        "function cv_flush.outer.<locals>.inner":
            "def inner(x: str) -> str:\n    return x + '\\ntail'"}


def test_class_without_source_is_summarised_by_its_members(lab: Lab) -> None:
    source = """\
        exec("class Made:\\n    K = {k}\\n    def go(self):\\n        return self.K + 1\\n")

        def step(x: int) -> int:
            return Made().go() + x
        """
    lab.write("cv_made", source.format(k=3))
    before = fp(lab.load("cv_made").step)
    text = before.sources["class cv_made.Made"]
    assert text.startswith("# source unavailable")
    assert "K = 3" in text
    lab.write("cv_made", source.format(k=4))
    after = fp(lab.load("cv_made").step)
    assert diff_components(before.components, after.components) == [
        "code of class cv_made.Made changed"]


def test_roots_given_as_bound_method_or_partial(lab: Lab) -> None:
    lab.write("cv_roots", """\
        import functools

        def helper(x: int) -> int:
            return x * 3

        class Runner:
            def run(self, x: int) -> int:
                return helper(x)

            @property
            def size(self) -> int:
                return helper(1)

        def combine(x: int, y: int) -> int:
            return helper(x) + y

        bound = Runner().run
        combine_one = functools.partial(combine, y=1)
        """)
    module = lab.load("cv_roots")
    assert set(fp(module.bound).components) == {"function cv_roots.Runner.run",
                                                "function cv_roots.helper"}
    assert set(fp(module.combine_one).components) == {"function cv_roots.combine",
                                                      "function cv_roots.helper"}
    assert set(fp(module.Runner).components) == {"class cv_roots.Runner",
                                                  "function cv_roots.helper"}


# -- determinism -------------------------------------------------------------------------------
DETERMINISM = """\
    import collections
    import enum

    class Color(enum.Enum):
        RED = "red"

    TAGS = {"alpha", "beta", "gamma", "delta"}
    FROZEN = frozenset({("a", 1), ("b", 2.5), ("c", None)})
    TABLE = {"z": [1, 2], "y": {"q", "p"}, "x": (b"raw", Color.RED)}

    exec("def generated(x):\\n    return sorted(TAGS) + [x, {1, 2, 3}]\\n")
    Pair = collections.namedtuple("Pair", "left right", defaults=(0,))

    square = lambda x: x * x

    class Box:
        def open(self) -> list:
            return [generated(1), square(2), Pair(1)]

    def step(x: int) -> int:
        return len(TAGS) + len(FROZEN) + len(TABLE) + len(Box().open()) + x
    """


def _fingerprint_in_subprocess(root: Path, seed: str) -> dict[str, Any]:
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        "import cv_det\n"
        "from sterna.cache.codeversion import code_fingerprint\n"
        "fp = code_fingerprint(cv_det.step)\n"
        "print(json.dumps({'digest': fp.digest, 'components': fp.components}))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env=env, cwd=str(root))
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_deterministic_across_processes(lab: Lab) -> None:
    lab.write("cv_det", DETERMINISM)
    here = fp(lab.load("cv_det").step)
    assert {"function cv_det.step", "class cv_det.Box", "bytecode cv_det.generated",
            "function cv_det.<lambda>", "constant cv_det.TAGS", "constant cv_det.FROZEN",
            "constant cv_det.TABLE", "class cv_det.Pair"} <= set(here.components)
    for seed in ("1", "2"):
        there = _fingerprint_in_subprocess(lab.root, seed)
        assert there == {"digest": here.digest, "components": here.components}


def test_repeated_calls_agree(lab: Lab) -> None:
    lab.write("cv_det", DETERMINISM)
    step = lab.load("cv_det").step
    assert fp(step) == fp(step) == fp(step)


# -- diff_components ---------------------------------------------------------------------------
def test_diff_components_orders_changed_added_removed() -> None:
    old = {"function etl.clean": "1", "function etl.helpers.normalise": "2",
           "constant etl.THRESHOLD": "3", "function etl.old": "4", "class etl.Box": "5"}
    new = {"function etl.clean": "1", "function etl.helpers.normalise": "9",
           "constant etl.THRESHOLD": "8", "function etl.extra": "7", "class etl.Box": "5"}
    assert diff_components(old, new) == [
        "constant etl.THRESHOLD changed",
        "code of function etl.helpers.normalise changed",
        "function etl.extra added",
        "function etl.old removed",
    ]
    assert diff_components(new, new) == []


def test_local_class_in_a_closure_is_followed_but_not_the_stdlib() -> None:
    """``enum.auto`` and ``functools.reduce`` are library code; a class captured from the
    enclosing function is user code."""

    class Local(enum.Enum):
        A = 1

    def pick() -> object:
        return functools.reduce(lambda a, b: a, [enum.auto, Local.A])

    prefix = f"{__name__}.{pick.__qualname__}"
    assert set(fp(pick).components) == {f"function {prefix}",
                                         f"class {__name__}.{Local.__qualname__}"}
