"""Every error sterna raises on purpose, under one root.

Catching ``SternaError`` catches all of them; catching a leaf tells exactly
what went wrong. Each message names the task, the argument, what was expected
and what came, because the person reading it is usually not the one who wrote
the pipeline::

    SternaError
    ├── ConfigError               bad configuration value or environment variable
    ├── DefinitionError           a @task or @workflow cannot be built
    │   ├── TaskDefinitionError       bad signature, annotation or @task parameter
    │   ├── WorkflowDefinitionError   bad wiring, control flow on a promise, cycles
    │   │   └── EdgeTypeError             an output cannot feed an input's type
    │   ├── ResourceError             a Resources quantity that does not parse
    │   └── UnsupportedTypeError      an annotation sterna cannot represent
    ├── InputError                a run was given missing, unknown or unparsable inputs
    ├── TypeCheckError            a value does not match its annotation at run time
    └── TaskFailedError           a task raised (after its retries)
        └── TaskTimeoutError          a task ran past its timeout

``SternaWarning`` is the one warning category (pickled types, deprecations).
"""

from __future__ import annotations

from typing import Any


class SternaError(Exception):
    """Root of every error sterna raises deliberately.

    ``run`` is the ``Run`` the error ended (with every node's record) when it
    was raised by a run, else None.
    """

    run: Any = None

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (a worker's type error): rebuild from the
        # message and attributes, since subclasses take keyword-only arguments.
        state = {k: v for k, v in self.__dict__.items() if k != "run"}
        return (_rebuild, (type(self), self.args, state))


def _rebuild(cls: type[SternaError], args: tuple[Any, ...], state: dict[str, Any]) -> SternaError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ConfigError(SternaError):
    """A configuration value (argument or environment variable) is invalid."""


class DefinitionError(SternaError):
    """A task or workflow definition is invalid; raised at decoration time."""


class TaskDefinitionError(DefinitionError):
    """A ``@task`` cannot be built from the function and parameters given."""


class WorkflowDefinitionError(DefinitionError):
    """A ``@workflow`` body wires tasks in a way sterna cannot run."""


class EdgeTypeError(WorkflowDefinitionError):
    """An output's type cannot be assigned to the input it is connected to."""


class ResourceError(DefinitionError):
    """A resource quantity (cpu, mem, gpu, ...) is malformed or inconsistent."""


class UnsupportedTypeError(DefinitionError):
    """An annotation has no sterna type (e.g. ``dict[int, str]``, a TypeVar)."""


class InputError(SternaError):
    """Inputs given to a run are missing, unknown, or cannot be parsed."""


class TypeCheckError(SternaError):
    """A value does not match the declared type of an input or output.

    Carries ``task``, ``argument`` (input or output name), ``expected`` and
    ``got`` so callers can react without parsing the message.
    """

    def __init__(
        self, message: str, *, task: str = "", argument: str = "", expected: str = "",
        got: str = "",
    ) -> None:
        super().__init__(message)
        self.task = task
        self.argument = argument
        self.expected = expected
        self.got = got


class TaskFailedError(SternaError):
    """A task raised an exception on its last attempt.

    ``task`` is the task's name, ``node`` the node id in the workflow,
    ``attempts`` how many times it ran, ``inputs`` a short summary of each
    input value and ``traceback`` the task's own formatted traceback. The
    original exception is chained as ``__cause__``.
    """

    def __init__(
        self, message: str, *, task: str, node: str = "", attempts: int = 1,
        inputs: dict[str, str] | None = None, traceback: str = "",
    ) -> None:
        super().__init__(message)
        self.task = task
        self.node = node
        self.attempts = attempts
        self.inputs = inputs or {}
        self.traceback = traceback


class TaskTimeoutError(TaskFailedError):
    """A task ran longer than its ``timeout`` and was stopped."""


class SternaWarning(UserWarning):
    """Warnings sterna emits (pickled fallback types, deprecated tasks)."""
