"""The memory hotplug notifier chain (the kernel's ``memory_chain``).

Subscribers are called in registration order with an event and the node. On
``MEM_GOING_OFFLINE`` any subscriber may return ``NOTIFY_BAD`` to veto the offline; the
chain stops there and the caller sends ``MEM_CANCEL_OFFLINE`` to the subscribers that
had already agreed, in reverse order, so that each can undo what it prepared.
"""

from __future__ import annotations

from typing import Callable

from .. import sched

__all__ = ["MemoryNotifier", "NOTIFY_OK", "NOTIFY_BAD", "MEM_GOING_OFFLINE",
           "MEM_CANCEL_OFFLINE", "MEM_OFFLINE", "MEM_GOING_ONLINE", "MEM_ONLINE"]

NOTIFY_OK = "ok"
NOTIFY_BAD = "bad"

MEM_GOING_OFFLINE = "going-offline"
MEM_CANCEL_OFFLINE = "cancel-offline"
MEM_OFFLINE = "offline"
MEM_GOING_ONLINE = "going-online"
MEM_ONLINE = "online"

Subscriber = Callable[[str, int], str]


class MemoryNotifier:
    """An ordered chain of ``(name, callback)``; registration happens before a run."""

    def __init__(self) -> None:
        self._chain: list[tuple[str, Subscriber]] = []

    def register(self, name: str, callback: Subscriber) -> None:
        """Append ``callback`` to the chain under ``name``."""
        self._chain = self._chain + [(name, callback)]

    def going_offline(self, nid: int) -> str | None:
        """Ask every subscriber; returns the name of the vetoing one, or ``None``.

        On a veto, the subscribers that had agreed get ``MEM_CANCEL_OFFLINE``.
        """
        agreed: list[tuple[str, Subscriber]] = []
        for name, callback in self._chain:
            sched.point("memory_notify:going-offline")
            if callback(MEM_GOING_OFFLINE, nid) == NOTIFY_BAD:
                for _, undo in reversed(agreed):
                    undo(MEM_CANCEL_OFFLINE, nid)
                return name
            agreed.append((name, callback))
        return None

    def notify(self, event: str, nid: int) -> None:
        """Send an event that cannot be vetoed."""
        for _, callback in self._chain:
            sched.point(f"memory_notify:{event}")
            callback(event, nid)

    def __repr__(self) -> str:
        return f"<MemoryNotifier {[name for name, _ in self._chain]}>"
