"""Task and workflow versions (cache/registry.py): what a version records, when it changes,
how registration treats a known version, and that every run registers what it runs."""

import dataclasses
import datetime
import importlib
import itertools
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from cli_support import forgetting_loaded_pipelines

import sterna
from sterna import Resources, task, workflow
from sterna.cache import history
from sterna.cache.index import rows
from sterna.cache.registry import (
    RegistrationError,
    TaskVersion,
    register_all,
    register_task,
    register_workflow,
    task_record,
    task_version,
    workflow_version,
)
from sterna.cache.store import Store
from sterna.cli.loader import load_module
from sterna.core import config
from sterna.core.errors import SternaError

_seq = itertools.count()
HEX = set("0123456789abcdef")
NOW = datetime.datetime(2026, 1, 2, 3, 4, 5)


@pytest.fixture(autouse=True)
def _forget_modules(tmp_path: Path) -> Iterator[None]:
    with forgetting_loaded_pipelines(tmp_path):
        yield


@pytest.fixture
def store() -> Store:
    return Store.at(config.current().home)


# -- module-level entities (their source is this file) -----------------------------------------
@task(cache=True, retries=2, timeout=5.0, requests=Resources(cpu="2", mem="1Gi"))
def scale(x: int) -> int:
    """Scale x."""
    return x * 3


@task
def describe(n: int) -> str:
    return f"n={n}"


@workflow
def scaled(x: int) -> str:
    return describe(n=scale(x=x))


def plain_body(x: int) -> int:
    return x + 1


PIPE = '''
from sterna import task, workflow


@task(cache=True)
def clean(x: int) -> int:
    """Double x."""
    return x * 2


@task
def label(n: int) -> str:
    return f"n={n}"


@workflow
def flow(x: int) -> str:
    return label(n=clean(x=x))
'''


def write_module(folder: Path, source: str) -> Path:
    """A real module file with a name no other test uses."""
    path = folder / f"regpipe_{next(_seq)}.py"
    path.write_text(textwrap.dedent(source))
    return path


def edit(path: Path, old: str, new: str) -> None:
    """Change the file (its size changes too, so no stale bytecode is reused)."""
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def reload(module: ModuleType) -> ModuleType:
    return importlib.reload(module)


def table(store: Store, sql: str, params: list[object] | None = None) -> list[dict[str, object]]:
    with store.session() as con:
        return rows(con, sql, params)


# -- what a version records ---------------------------------------------------------------------
def test_task_version_records_interface_config_code_and_source() -> None:
    record = task_record(scale)
    assert record.name == scale.name
    assert len(record.version) == 16 and set(record.version) <= HEX
    assert json.loads(record.interface) == {"inputs": {"x": "int"}, "outputs": {"o0": "int"}}
    settings = json.loads(record.config)
    assert settings["retries"] == 2
    assert settings["timeout"] == 5.0
    assert settings["cache"] is True
    assert settings["requests"]["cpu"] == "2"
    assert settings["requests"]["mem"] == "1Gi"
    assert len(record.code_fingerprint) == 32 and set(record.code_fingerprint) <= HEX
    assert any(label.startswith("function ") and label.endswith(".scale")
               for label in record.code_components)
    assert "def scale(x: int) -> int:" in record.source
    assert "return x * 3" in record.source
    assert record.cache_version == f"code:{record.code_fingerprint[:16]}"


def test_user_cache_version_is_kept_apart_from_the_version() -> None:
    pinned = task(cache=True, cache_version="v7")(plain_body)
    other = task(cache=True, cache_version="v8")(plain_body)
    assert task_version(pinned).cache_version == "v7"
    assert task_version(other).cache_version == "v8"
    # cache_version is part of the configuration, so the versions differ
    assert task_version(pinned).version != task_version(other).version


def test_version_is_deterministic_and_follows_the_configuration() -> None:
    once = task_version(task(retries=1)(plain_body))
    again = task_version(task(retries=1)(plain_body))
    more = task_version(task(retries=2)(plain_body))
    assert once == again
    assert more.code_fingerprint == once.code_fingerprint
    assert more.interface == once.interface
    assert more.version != once.version


def test_code_changes_make_a_new_version_comments_and_docstrings_do_not(tmp_path: Path) -> None:
    path = write_module(tmp_path, PIPE)
    module = load_module(str(path))
    first = task_version(module.clean)

    edit(path, '"""Double x."""', '"""Double x, now documented at length."""  # a comment')
    module = reload(module)
    cosmetic = task_version(module.clean)
    assert cosmetic.version == first.version
    assert cosmetic.code_fingerprint == first.code_fingerprint

    edit(path, "return x * 2", "return x * 2 + 1")
    module = reload(module)
    changed = task_version(module.clean)
    assert changed.version != first.version
    assert changed.code_fingerprint != first.code_fingerprint
    assert changed.interface == first.interface


def test_workflow_version_covers_graph_and_task_versions() -> None:
    version, graph_text, tasks = workflow_version(scaled.graph)
    assert len(version) == 16 and set(version) <= HEX
    assert tasks == {scale.name: task_version(scale).version,
                     describe.name: task_version(describe).version}
    graph = json.loads(graph_text)
    assert {node["task"] for node in graph["nodes"].values()} == {scale.name, describe.name}
    assert graph["interface"] == {"inputs": {"x": "int"}, "outputs": {"o0": "str"}}
    consumer = next(n for n in graph["nodes"].values() if n["task"] == describe.name)
    assert consumer["bindings"] == {"n": {"node": "scale", "output": "o0"}}


# -- register_task / register_workflow -------------------------------------------------------------
def test_registering_the_same_definition_twice_is_a_no_op(store: Store) -> None:
    record = task_version(scale)
    with store.session() as con:
        assert register_task(con, record, project="p", domain="d", registered_at=NOW) is True
    with store.session() as con:
        assert register_task(con, record, project="p", domain="d", registered_at=NOW) is False
    found = table(store, "SELECT * FROM task_versions WHERE name = ?", [scale.name])
    assert len(found) == 1
    row = found[0]
    assert (row["project"], row["domain"], row["version"]) == ("p", "d", record.version)
    assert row["interface"] == record.interface
    assert row["config"] == record.config
    assert row["code_fingerprint"] == record.code_fingerprint
    assert json.loads(row["code_components"]) == record.code_components
    assert row["source"] == record.source
    assert row["registered_at"] == NOW


def test_same_definition_with_other_source_text_is_still_a_no_op(store: Store) -> None:
    record = task_version(scale)
    with store.session() as con:
        register_task(con, record, project="p", domain="d", registered_at=NOW)
        reformatted = dataclasses.replace(record, source=record.source + "\n# trailing\n")
        assert register_task(con, reformatted, project="p", domain="d",
                             registered_at=NOW) is False


@pytest.mark.parametrize("field, value", [
    ("interface", json.dumps({"inputs": {"x": "str"}, "outputs": {"o0": "int"}})),
    ("config", json.dumps({"retries": 9})),
    ("code_fingerprint", "0" * 32),
])
def test_a_known_version_with_another_definition_is_refused(store: Store, field: str,
                                                            value: str) -> None:
    record = task_version(scale)
    with store.session() as con:
        register_task(con, record, project="p", domain="d", registered_at=NOW)
    clash = dataclasses.replace(record, **{field: value})
    with pytest.raises(RegistrationError) as info, store.session() as con:
        register_task(con, clash, project="p", domain="d", registered_at=NOW)
    message = str(info.value)
    assert scale.name in message
    assert record.version in message
    assert "p/d" in message
    assert "different definition" in message
    assert isinstance(info.value, SternaError)
    found = table(store, "SELECT interface, config, code_fingerprint FROM task_versions")
    assert found == [{"interface": record.interface, "config": record.config,
                      "code_fingerprint": record.code_fingerprint}]


def test_a_hand_built_version_is_registered_as_given(store: Store) -> None:
    record = TaskVersion(name="hand.made", version="v1", interface='{"inputs":{},"outputs":{}}',
                         config="{}", code_fingerprint="f" * 32, code_components={},
                         source="def made(): ...", cache_version="v1")
    with store.session() as con:
        assert register_task(con, record, project="p", domain="d", registered_at=NOW)
    assert history.task_show(store, "hand.made", "v1")["source"] == "def made(): ..."


def test_versions_are_per_project_and_domain(store: Store) -> None:
    record = task_version(scale)
    with store.session() as con:
        assert register_task(con, record, project="p", domain="dev", registered_at=NOW)
        assert register_task(con, record, project="p", domain="prod", registered_at=NOW)
    found = table(store, "SELECT domain FROM task_versions ORDER BY domain")
    assert [r["domain"] for r in found] == ["dev", "prod"]


def test_a_pinned_workflow_version_with_another_graph_is_refused(store: Store) -> None:
    @task
    def bump(x: int) -> int:
        return x + 1

    @workflow(name="reg.same")
    def once(x: int) -> int:
        return bump(x=x)

    @workflow(name="reg.same")
    def twice(x: int) -> int:
        return bump(x=bump(x=x))

    assert workflow_version(once.graph)[0] != workflow_version(twice.graph)[0]
    with store.session() as con:
        assert register_workflow(con, once.graph, project="p", domain="d", registered_at=NOW,
                                 version="v1") is True
        assert register_workflow(con, once.graph, project="p", domain="d", registered_at=NOW,
                                 version="v1") is False
    with pytest.raises(RegistrationError) as info, store.session() as con:
        register_workflow(con, twice.graph, project="p", domain="d", registered_at=NOW,
                          version="v1")
    assert "'reg.same'" in str(info.value)
    assert "'v1'" in str(info.value)
    found = table(store, "SELECT version, graph FROM workflow_versions")
    assert len(found) == 1
    assert found[0]["graph"] == workflow_version(once.graph)[1]


# -- register_all -----------------------------------------------------------------------------
def test_register_all_registers_tasks_then_the_workflow(store: Store) -> None:
    config.configure(project="alpha", domain="prod")
    done = register_all(store, [scaled])
    version = workflow_version(scaled.graph)[0]
    assert sorted(done) == sorted([
        ("task", scale.name, task_version(scale).version, True),
        ("task", describe.name, task_version(describe).version, True),
        ("workflow", scaled.name, version, True),
    ])
    again = register_all(store, [scaled, scale])  # a task already covered is not repeated
    assert sorted(again) == sorted((kind, name, ver, False) for kind, name, ver, _ in done)
    flows = table(store, "SELECT * FROM workflow_versions")
    assert len(flows) == 1
    assert (flows[0]["project"], flows[0]["domain"]) == ("alpha", "prod")
    assert json.loads(flows[0]["tasks"]) == workflow_version(scaled.graph)[2]
    assert {r["project"] for r in table(store, "SELECT project FROM task_versions")} == {"alpha"}


def test_register_all_with_a_task_registers_no_workflow(store: Store) -> None:
    done = register_all(store, [describe])
    assert done == [("task", describe.name, task_version(describe).version, True)]
    assert table(store, "SELECT * FROM workflow_versions") == []


def test_an_edited_task_registers_a_new_version_and_the_old_stays_listed(
        tmp_path: Path, store: Store) -> None:
    path = write_module(tmp_path, PIPE)
    module = load_module(str(path))
    old_task = task_version(module.clean).version
    old_flow = workflow_version(module.flow.graph)[0]
    register_all(store, [module.flow])

    edit(path, "return x * 2", "return x * 2 + 1")
    module = reload(module)
    new_task = task_version(module.clean).version
    new_flow = workflow_version(module.flow.graph)[0]
    assert new_task != old_task and new_flow != old_flow
    done = register_all(store, [module.flow])
    assert ("task", module.clean.name, new_task, True) in done
    assert ("task", module.label.name, task_version(module.label).version, False) in done
    assert ("workflow", module.flow.name, new_flow, True) in done

    versions = history.task_versions(store, module.clean.name)
    assert [v["version"] for v in versions] == [new_task, old_task]
    listing = {r["name"]: r for r in history.tasks_list(store)}
    assert listing[module.clean.name]["latest"] == new_task
    assert listing[module.clean.name]["versions"] == 2
    assert listing[module.label.name]["versions"] == 1
    assert "x * 2 + 1" in history.task_show(store, module.clean.name)["source"]
    assert "x * 2 + 1" not in history.task_show(store, module.clean.name, old_task)["source"]
    flows = table(store, "SELECT version FROM workflow_versions WHERE name = ?",
                  [module.flow.name])
    assert {r["version"] for r in flows} == {old_flow, new_flow}


# -- runs register what they run ---------------------------------------------------------------
def test_every_run_registers_its_tasks_and_workflow(store: Store) -> None:
    result = sterna.run(scaled, x=2)
    assert result.outputs == "n=6"
    with store.session():
        pass  # take in the journaled run
    tasks = {r["name"]: r for r in table(store, "SELECT * FROM task_versions")}
    assert set(tasks) == {scale.name, describe.name}
    assert tasks[scale.name]["version"] == task_version(scale).version
    assert "return x * 3" in tasks[scale.name]["source"]
    flows = table(store, "SELECT * FROM workflow_versions")
    assert [(f["name"], f["version"]) for f in flows] == [
        (scaled.name, workflow_version(scaled.graph)[0])]
    run = table(store, "SELECT * FROM runs")[0]
    assert run["run_id"] == result.run_id
    assert run["workflow_version"] == flows[0]["version"]
    assert run["kind"] == "workflow"
    nodes = table(store, "SELECT task, task_version FROM node_executions")
    assert {(n["task"], n["task_version"]) for n in nodes} == {
        (scale.name, task_version(scale).version),
        (describe.name, task_version(describe).version)}


def test_a_second_run_and_register_all_add_no_duplicate_versions(store: Store) -> None:
    sterna.run(scaled, x=1)
    sterna.run(scaled, x=2)
    done = register_all(store, [scaled])
    assert all(not new for *_, new in done)
    counts = table(store, "SELECT name, count(*) AS n FROM task_versions GROUP BY name")
    assert {r["name"]: r["n"] for r in counts} == {scale.name: 1, describe.name: 1}
    assert len(table(store, "SELECT * FROM workflow_versions")) == 1


def test_a_single_task_run_registers_the_task(store: Store) -> None:
    result = sterna.run(describe, n=4)
    assert result.outputs == "n=4"
    with store.session():
        pass
    assert [r["name"] for r in table(store, "SELECT name FROM task_versions")] == [describe.name]
    run = table(store, "SELECT * FROM runs")[0]
    assert (run["kind"], run["workflow"]) == ("task", describe.name)


def test_runs_of_an_edited_module_register_both_versions(tmp_path: Path, store: Store) -> None:
    path = write_module(tmp_path, PIPE)
    module = load_module(str(path))
    assert sterna.run(module.flow, x=2).outputs == "n=4"
    old = task_version(module.clean).version
    edit(path, "return x * 2", "return x * 2 + 1")
    module = reload(module)
    assert sterna.run(module.flow, x=2).outputs == "n=5"
    new = task_version(module.clean).version
    versions = [v["version"] for v in history.task_versions(store, module.clean.name)]
    assert sorted(versions) == sorted([old, new])
    runs = history.runs_list(store)
    assert len({r["run_id"] for r in runs}) == 2
    flows = table(store, "SELECT DISTINCT workflow_version FROM runs")
    assert len(flows) == 2
