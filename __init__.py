"""sterna: a local-first, embedded workflow engine for typed, cached pipelines.

    import sterna

    @sterna.task
    def double(x: int) -> int:
        return 2 * x

    @sterna.workflow
    def pipeline(x: int = 3) -> int:
        return double(x=double(x=x))

    pipeline(x=5)                 # 20, run by the engine
    sterna.run(pipeline, x=5)     # the Run record: outputs, run_id, per-node records

``import sterna`` is kept light: it imports neither ray, duckdb, pyarrow nor
typeguard; they load when first needed.
"""

from sterna.core.config import Config, configure
from sterna.core.engine import run
from sterna.core.errors import (
    ConfigError,
    DefinitionError,
    EdgeTypeError,
    InputError,
    ResourceError,
    SternaError,
    SternaWarning,
    TaskDefinitionError,
    TaskFailedError,
    TaskTimeoutError,
    TypeCheckError,
    UnsupportedTypeError,
    WorkflowDefinitionError,
)
from sterna.core.maptask import MapTask, map_task
from sterna.core.records import Attempt, NodeRecord, Run
from sterna.core.resources import GPUAccelerator, Resources
from sterna.core.task import Task, task
from sterna.core.workflow import Workflow, workflow
from sterna.typesys.files import Directory, File

__version__ = "0.1.0"

__all__ = [
    "Attempt",
    "Config",
    "ConfigError",
    "DefinitionError",
    "Directory",
    "EdgeTypeError",
    "File",
    "GPUAccelerator",
    "InputError",
    "MapTask",
    "NodeRecord",
    "ResourceError",
    "Resources",
    "Run",
    "SternaError",
    "SternaWarning",
    "Task",
    "TaskDefinitionError",
    "TaskFailedError",
    "TaskTimeoutError",
    "TypeCheckError",
    "UnsupportedTypeError",
    "Workflow",
    "WorkflowDefinitionError",
    "configure",
    "map_task",
    "run",
    "task",
    "workflow",
]
