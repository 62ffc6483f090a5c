"""Versions of tasks and workflows, as rows for the index.

A task's version defaults to a digest of its code fingerprint, interface and
configuration: change any of them and the task registers a new version while
the old ones stay listed. A workflow's version is a digest of its graph and
the versions of the tasks it uses.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sterna.core.errors import SternaError

from .fingerprint import digest_bytes
from .keys import CacheKey, interface_text, make_key

if TYPE_CHECKING:
    from sterna.core.graph import Binding, Graph
    from sterna.core.interface import Interface
    from sterna.core.task import Task


class RegistrationError(SternaError):
    """A version is already registered with a different definition."""


@dataclass(frozen=True)
class TaskVersion:
    """Everything registered about one version of a task."""

    name: str
    version: str
    interface: str
    config: str
    code_fingerprint: str
    code_components: dict[str, str]
    source: str
    cache_version: str


def interface_json(interface: Interface) -> str:
    """Canonical JSON of an interface (type descriptions by name)."""
    return interface_text({n: p.stype.describe() for n, p in interface.inputs.items()},
                          {n: t.describe() for n, t in interface.outputs.items()})


def config_json(task: Task[..., Any]) -> str:
    """Canonical JSON of a task's configuration."""
    data = dataclasses.asdict(task.config)
    data["task_config"] = None if task.config.task_config is None else repr(
        task.config.task_config)
    return json.dumps(data, sort_keys=True, default=repr)


def task_version(task: Task[..., Any]) -> TaskVersion:
    """The task's version record (memoised on the task object)."""
    cached = task.__dict__.get("_version")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    from .codeversion import code_fingerprint

    code = code_fingerprint(task.fn)
    interface = interface_json(task.interface)
    config = config_json(task)
    version = digest_bytes(f"{code.digest}\n{interface}\n{config}".encode())[:16]
    cache_version = task.config.cache_version or f"code:{code.digest[:16]}"
    record = TaskVersion(task.name, version, interface, config, code.digest,
                         dict(code.components), "", cache_version)
    task.__dict__["_version"] = record
    return record


def task_record(task: Task[..., Any]) -> TaskVersion:
    """The version record with the task's source text, for registration.

    Kept apart from ``task_version``, which a run needs at once, because
    reading source costs milliseconds a cached run should not spend.
    """
    try:
        source = inspect.getsource(task.fn)
    except (OSError, TypeError):
        source = ""
    return dataclasses.replace(task_version(task), source=source)


def task_key(task: Task[..., Any], digests: dict[str, str]) -> CacheKey:
    """The cache key of a call of ``task`` whose inputs have these digests."""
    return make_key(task=task.name, cache_version=task_version(task).cache_version,
                    interface=interface_json(task.interface), inputs=digests,
                    ignored=task.config.cache_ignore_input_vars)


def graph_json(graph: Graph) -> str:
    """Canonical JSON of a graph: nodes (task, bindings, ordering edges) and outputs."""
    nodes = {node_id: {"task": node.task.name,
                       "bindings": {k: _binding(b) for k, b in node.bindings.items()},
                       "after": sorted(node.after)}
             for node_id, node in graph.nodes.items()}
    outputs = {k: _binding(b) for k, b in graph.outputs.items()}
    return json.dumps({"nodes": nodes, "outputs": outputs,
                       "interface": json.loads(interface_json(graph.interface))},
                      sort_keys=True, default=repr)


def _binding(binding: Binding) -> Any:
    from sterna.core.graph import Const, DictOf, InputRef, ListOf, NodeRef

    if isinstance(binding, InputRef):
        return {"input": binding.name}
    if isinstance(binding, NodeRef):
        return {"node": binding.node, "output": binding.output}
    if isinstance(binding, Const):
        return {"const": repr(binding.value)}
    if isinstance(binding, ListOf):
        return {"list": [_binding(b) for b in binding.items]}
    assert isinstance(binding, DictOf)
    return {"dict": {k: _binding(b) for k, b in binding.items}}


def workflow_version(graph: Graph) -> tuple[str, str, dict[str, str]]:
    """(version, graph JSON, {task name: task version}) of a graph (memoised)."""
    cached = graph.__dict__.get("_version")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    tasks = {task.name: task_version(task).version for task in graph.tasks()}
    text = graph_json(graph)
    version = digest_bytes(f"{text}\n{json.dumps(tasks, sort_keys=True)}".encode())[:16]
    graph.__dict__["_version"] = (version, text, tasks)
    return version, text, tasks


def register_task(con: Any, record: TaskVersion, *, project: str, domain: str,
                  registered_at: Any) -> bool:
    """Register a task version; False if it was there already with the same definition."""
    existing = con.execute(
        "SELECT interface, config, code_fingerprint FROM task_versions "
        "WHERE project = ? AND domain = ? AND name = ? AND version = ?",
        [project, domain, record.name, record.version]).fetchone()
    if existing is not None:
        if tuple(existing) != (record.interface, record.config, record.code_fingerprint):
            raise RegistrationError(
                f"task {record.name!r} version {record.version!r} is already registered in "
                f"{project}/{domain} with a different definition; choose a new version")
        return False
    con.execute("INSERT INTO task_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [project, domain, record.name, record.version, record.interface, record.config,
                 record.code_fingerprint, json.dumps(record.code_components, sort_keys=True),
                 record.source, registered_at])
    return True


def register_workflow(con: Any, graph: Graph, *, project: str, domain: str,
                      registered_at: Any, version: str | None = None) -> bool:
    """Register a workflow version (and its tasks); False if already registered."""
    auto, text, tasks = workflow_version(graph)
    version = version or auto
    existing = con.execute(
        "SELECT graph, tasks FROM workflow_versions "
        "WHERE project = ? AND domain = ? AND name = ? AND version = ?",
        [project, domain, graph.name, version]).fetchone()
    task_text = json.dumps(tasks, sort_keys=True)
    if existing is not None:
        if tuple(existing) != (text, task_text):
            raise RegistrationError(
                f"workflow {graph.name!r} version {version!r} is already registered in "
                f"{project}/{domain} with a different definition; choose a new version")
        return False
    con.execute("INSERT INTO workflow_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
                [project, domain, graph.name, version, text, task_text, registered_at])
    return True


def register_all(store: Any, targets: Any) -> list[tuple[str, str, str, bool]]:
    """Register tasks and workflows in one session: (kind, name, version, newly registered)."""
    import datetime

    from sterna.core import config
    from sterna.core.task import Task

    settings = config.current()
    now = datetime.datetime.now()
    done: list[tuple[str, str, str, bool]] = []
    seen: set[str] = set()
    with store.session() as con:
        for target in targets:
            graph = target.as_graph() if isinstance(target, Task) else target.graph
            for task in graph.tasks():
                if task.name in seen:
                    continue
                seen.add(task.name)
                record = task_record(task)
                new = register_task(con, record, project=settings.project,
                                    domain=settings.domain, registered_at=now)
                done.append(("task", record.name, record.version, new))
            if not isinstance(target, Task):
                new = register_workflow(con, graph, project=settings.project,
                                        domain=settings.domain, registered_at=now)
                done.append(("workflow", graph.name, workflow_version(graph)[0], new))
    return done
