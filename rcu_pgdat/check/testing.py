"""Forcing an interleaving in a test: named threads that act only when told to.

Like trio's ``Sequencer``, :class:`Actors` makes the order of a race the test's own
script instead of the OS's whim. Each actor is a real thread with a fixed name (the
identity the oracles and reports use) that runs the callables it is handed, one at a
time, in order::

    with Actors("reader", "remover") as actors:
        actors.run("reader", oracles.section_begin, "rcu:qsbr", False)
        gp = actors.run("remover", oracles.gp_begin, "rcu:qsbr")
        actors.run("remover", oracles.gp_end, gp)       # the reader is still inside

``run`` waits for the step and returns its result (or raises its exception in the
caller); ``start`` hands a step over without waiting, for a step that blocks until a
later one releases it. Every wait has a timeout, so a wrong script fails instead of
hanging.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["STEP_TIMEOUT", "Actors"]

R = TypeVar("R")

#: Seconds a step may take before ``run``/``Future.result`` gives up.
STEP_TIMEOUT = 5.0

_Job = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class Actors:
    """Threads named ``names`` that run steps on command; a context manager."""

    def __init__(self, *names: str) -> None:
        if len(set(names)) != len(names):
            raise ValueError(f"actor names must be unique, got {names}")
        self._jobs: dict[str, queue.SimpleQueue[_Job | None]] = {}
        self._threads: dict[str, threading.Thread] = {}
        for name in names:
            jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
            self._jobs[name] = jobs
            self._threads[name] = threading.Thread(target=_serve, args=(jobs,), name=name,
                                                   daemon=True)

    def __enter__(self) -> Actors:  # noqa: PYI034 - typing.Self needs Python 3.11
        for thread in self._threads.values():
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for jobs in self._jobs.values():
            jobs.put(None)
        for thread in self._threads.values():
            thread.join(STEP_TIMEOUT)

    def start(self, name: str, fn: Callable[..., R], *args: Any, **kwargs: Any) -> Future[R]:
        """Hand ``fn(*args, **kwargs)`` to actor ``name``; returns at once."""
        future: Future[R] = Future()
        self._jobs[name].put((future, fn, args, kwargs))
        return future

    def run(self, name: str, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Have actor ``name`` run ``fn(*args, **kwargs)`` and wait for its result."""
        return self.start(name, fn, *args, **kwargs).result(STEP_TIMEOUT)


def _serve(jobs: queue.SimpleQueue[_Job | None]) -> None:
    """An actor's loop: run each step, hand back its result or exception."""
    while True:
        job = jobs.get()
        if job is None:
            return
        future, fn, args, kwargs = job
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:       # noqa: BLE001 - handed to the waiting test
            future.set_exception(exc)
