"""The serial executor: each call runs in the driver, inside ``submit``.

Values are handed on as the very same Python objects (a table is never
copied), and a timeout is a ``SIGALRM`` that stops the task in the main thread.
"""

from __future__ import annotations

from concurrent.futures import Future

from .base import Call, Outcome, run_item


class SerialExecutor:
    """Runs one call at a time, in this process."""

    name = "serial"

    def slots(self) -> int:
        return 1

    def submit(self, call: Call) -> Future[list[Outcome]]:
        future: Future[list[Outcome]] = Future()
        future.set_result([run_item(call.task, item, timeout=call.timeout,
                                    environment=call.environment) for item in call.items])
        return future

    def cancel_all(self) -> None:
        """Nothing runs in the background."""
