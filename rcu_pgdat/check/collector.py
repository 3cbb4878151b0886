"""The collector: every violation of a run, from any thread, reaches one place.

Invariant: a reported violation is never lost. ``report()`` appends under a private lock
that is held for a list append and nothing else; the exception hook turns an exception
that escapes a worker thread into a ``thread-exception`` violation. With
``stop_on_first`` (the default, like KASAN without ``kasan_multi_shot``) only the first
violation is kept with its full report and later ones are counted in ``suppressed``.

``stopped`` is the flag workers poll to end the run. It only ever goes from False to
True and is one attribute load to read, so polling it from any thread costs nothing and
needs no lock; a worker that reads a stale False stops at its next poll.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator

from .. import sched
from . import _stack
from .kinds import Kind
from .violation import Violation, ViolationError

__all__ = ["Collector"]


class Collector:
    """Gathers violations; thread-safe.

    ``_lock`` (a ``threading.Lock``) guards ``_violations``, ``suppressed`` and
    ``_providers``. It is never held while calling out (providers, hooks) or while
    taking another lock, so taking it can never deadlock.
    """

    def __init__(self, stop_on_first: bool = True) -> None:
        self.stop_on_first = stop_on_first
        #: True once the run should stop: a violation with ``stop_on_first``, or ``stop()``.
        self.stopped = False
        #: Violations not kept because ``stop_on_first`` already kept one.
        self.suppressed = 0
        self._violations: list[Violation] = []
        self._providers: list[Callable[[], str]] = []
        self._lock = threading.Lock()

    # -- reporting -------------------------------------------------------------------

    def report(self, violation: Violation) -> Violation:
        """Record ``violation`` (with the context lines added); returns what was stored."""
        with self._lock:
            if self.stop_on_first and self._violations:
                self.suppressed += 1
                return violation
            providers = list(self._providers)
        # Providers may take their own locks (the oracles' statistics): call them with
        # no lock of ours held.
        context = tuple(_call_provider(p) for p in providers)
        stored = violation if not context else _with_context(violation, context)
        with self._lock:
            if self.stop_on_first and self._violations:
                # Another thread's violation got in while we built the context.
                self.suppressed += 1
                return stored
            self._violations.append(stored)
            if self.stop_on_first:
                self.stopped = True
        return stored

    def report_exception(self, exc: BaseException, thread: str | None = None) -> None:
        """Report an exception that ended (or was caught at the top of) a worker."""
        if isinstance(exc, ViolationError):
            return                      # reported before it was raised
        name = thread if thread is not None else sched.current_name()
        lines = [f"{type(exc).__name__}: {exc}"]
        cause = exc.__cause__ or exc.__context__
        if cause is not None:
            lines.append(f"while handling {type(cause).__name__}: {cause}")
        self.report(Violation(
            kind=Kind.THREAD_EXCEPTION, subject=f"in {name}: {type(exc).__name__}: {exc}",
            thread=name, stack=_stack.from_traceback(exc.__traceback__),
            what=f"Uncaught exception in thread {name}, raised at", details="\n".join(lines)))

    def stop(self) -> None:
        """Ask every worker to stop (the runner's end of run, or a fatal error)."""
        self.stopped = True

    def add_context(self, provider: Callable[[], str]) -> None:
        """Have ``provider()`` add lines to every report from now on (stats, reproduce line)."""
        with self._lock:
            self._providers.append(provider)

    # -- results -----------------------------------------------------------------------

    @property
    def violations(self) -> list[Violation]:
        """A copy of the violations kept so far, in the order they were reported."""
        with self._lock:
            return list(self._violations)

    def kinds(self) -> list[str]:
        """The kind strings of the kept violations, in order (what tests and CI match)."""
        return [v.kind.value for v in self.violations]

    @property
    def ok(self) -> bool:
        """Whether nothing was reported."""
        with self._lock:
            return not self._violations and not self.suppressed

    def format(self) -> str:
        """Every kept report, then a line on what was suppressed."""
        text = "\n".join(v.format() for v in self.violations)
        if self.suppressed:
            text += f"\n({self.suppressed} later violation(s) not kept: stop_on_first)"
        return text

    # -- threads -------------------------------------------------------------------------

    @contextlib.contextmanager
    def install_excepthook(self) -> Iterator[Collector]:
        """Route ``threading.excepthook`` here for the ``with`` block, then restore it.

        ``SystemExit`` stays silent, as with the default hook.
        """
        previous = threading.excepthook

        def hook(args: threading.ExceptHookArgs) -> None:
            if args.exc_type is SystemExit or args.exc_value is None:
                return
            name = args.thread.name if args.thread is not None else None
            self.report_exception(args.exc_value, name)

        threading.excepthook = hook
        try:
            yield self
        finally:
            threading.excepthook = previous

    def __repr__(self) -> str:
        with self._lock:
            n = len(self._violations)
        state = "stopped" if self.stopped else "running"
        return f"<Collector {n} violation(s), {self.suppressed} suppressed, {state}>"


def _call_provider(provider: Callable[[], str]) -> str:
    """A provider's text; a failing provider must not lose the violation."""
    try:
        return provider()
    except Exception as exc:           # noqa: BLE001 - any failure becomes a context line
        return f"(context provider failed: {type(exc).__name__}: {exc})"


def _with_context(violation: Violation, context: tuple[str, ...]) -> Violation:
    return dataclasses.replace(violation, context=violation.context + context)
