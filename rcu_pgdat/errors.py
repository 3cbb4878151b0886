"""The exception hierarchy: one root, misuse errors that say what to do instead.

Every exception the harness raises on purpose derives from :class:`RCUPgdatError`.
Misuse of an API (the caller did something the API forbids) derives from
:class:`UsageError`, which is also a ``RuntimeError`` so that code written against
``threading``'s conventions ("cannot release un-acquired lock") catches it the same way.
"""

from __future__ import annotations

__all__ = [
    "RCUPgdatError",
    "UsageError",
    "UnbalancedUnlockError",
    "SynchronizeInReaderError",
    "UnregisteredThreadError",
    "ShutdownError",
    "WrongIndexError",
    "CleanupBusyError",
    "SchedulerError",
    "TraceError",
]


class RCUPgdatError(Exception):
    """Root of every error raised by rcu-pgdat on purpose."""


class UsageError(RCUPgdatError, RuntimeError):
    """An API was used in a way it forbids; the message says what and how to fix it."""


class UnbalancedUnlockError(UsageError):
    """``read_unlock()`` without a matching ``read_lock()`` in this thread."""


class SynchronizeInReaderError(UsageError):
    """A grace-period wait from inside a read-side section of the same flavor or domain.

    It would wait for the caller's own section to end: a self-deadlock.
    """


class UnregisteredThreadError(UsageError):
    """A QSBR read-side or quiescent-state call from a thread that never registered."""


class ShutdownError(UsageError):
    """A call on an RCU flavor or SRCU domain after ``shutdown()``/``cleanup()``."""


class WrongIndexError(UsageError):
    """``srcu_read_unlock(idx)`` with an index this thread does not hold."""


class CleanupBusyError(UsageError):
    """``cleanup()`` of an SRCU domain while readers are still inside it."""


class SchedulerError(RCUPgdatError):
    """The scheduler could not do what was asked (bad state, timeout of a wait)."""


class TraceError(SchedulerError):
    """A schedule trace cannot be read or replayed: bad JSON, wrong format or version,
    or a run that departs from it (unknown thread, thread not runnable at step N)."""
