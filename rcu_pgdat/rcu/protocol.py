"""The plug-in protocol: what an RCU flavor or an SRCU domain must provide.

The built-in flavors implement exactly this and nothing the harness relies on beyond it,
so a user's implementation, named by import path (``module:attr``), is driven and
checked the same way. The harness never reads a flavor's internal state to judge it:
it wraps every call (``rcu_pgdat.harness.checked``) and tells the oracles what happened.

An RCU flavor (``RCUFlavor``) guarantees: a ``synchronize()`` that starts after a
read-side section started does not return before that section ends. Everything else
(callbacks, polled cookies, barrier) is defined in terms of that grace period.

An SRCU domain (``SRCUDomain``) gives the same guarantee for its own sections only;
its readers may block inside a section.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

__all__ = ["RCUFlavor", "SRCUDomain", "RCU_REQUIRED", "RCU_OPTIONAL", "SRCU_REQUIRED"]


@runtime_checkable
class RCUFlavor(Protocol):
    """An RCU flavor. Methods are called from any thread unless stated otherwise."""

    #: Short name for reports ("qsbr", "memb", or the plug-in's own).
    name: str

    def register_thread(self) -> None:
        """Make the calling thread a reader (QSBR: required before read_lock)."""

    def unregister_thread(self) -> None:
        """Undo ``register_thread``; the thread must be outside any section."""

    def read_lock(self) -> None:
        """Begin a read-side section (nestable)."""

    def read_unlock(self) -> None:
        """End the innermost read-side section of the calling thread."""

    def synchronize(self) -> None:
        """Wait for a full grace period: every section begun before the call has ended."""

    def call_rcu(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` in a worker after a full grace period from now."""

    def barrier(self) -> None:
        """Wait until every callback queued by ``call_rcu`` before this call has run."""

    def get_state(self) -> Any:
        """A cookie for a grace period that starts after this call."""

    def poll_state(self, cookie: Any) -> bool:
        """Whether a full grace period has elapsed since ``get_state`` gave ``cookie``."""

    def cond_synchronize(self, cookie: Any) -> None:
        """``synchronize()`` unless ``poll_state(cookie)`` already holds."""

    def shutdown(self) -> None:
        """Run pending callbacks, stop the worker; later calls raise ``ShutdownError``."""


#: Methods every RCU plug-in must have (checked when it is loaded).
RCU_REQUIRED = ("read_lock", "read_unlock", "synchronize")
#: Methods the harness uses when present; without them it falls back (a plug-in with
#: no ``call_rcu`` gets one built on its ``synchronize``) or skips (``quiescent_state``).
RCU_OPTIONAL = ("register_thread", "unregister_thread", "quiescent_state",
                "thread_offline", "thread_online", "call_rcu", "barrier",
                "get_state", "poll_state", "cond_synchronize", "shutdown")


@runtime_checkable
class SRCUDomain(Protocol):
    """An SRCU domain (the kernel's ``srcu_struct``)."""

    name: str

    def read_lock(self) -> int:
        """Begin a section; returns the index to pass to ``read_unlock``."""

    def read_unlock(self, idx: int) -> None:
        """End the section begun by the ``read_lock`` that returned ``idx``."""

    def synchronize(self) -> None:
        """Wait until every section of this domain begun before the call has ended."""

    def call_srcu(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` after a full grace period of this domain."""

    def barrier(self) -> None:
        """Wait for every ``call_srcu`` callback queued before this call."""

    def cleanup(self) -> None:
        """Tear the domain down; ``CleanupBusyError`` while readers are inside.

        (The built-in ``SRCU`` also has ``shutdown()``, as flavors do: one
        implementation, two names.)
        """


SRCU_REQUIRED = ("read_lock", "read_unlock", "synchronize")
