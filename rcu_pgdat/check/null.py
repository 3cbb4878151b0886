"""The oracles switched off: every event accepted and forgotten.

For measuring what the oracles cost (``rcu-pgdat-stress bench``: reader throughput with
the oracles off) and for running the model's read side as a plain program. Sections,
grace periods and retirements are not followed and nothing is counted; ``deref``
returns the object itself, so readers use tracked objects raw (tracked memory keeps its
own lock-free liveness check on every field: a use after free still raises). Nothing
here can report a violation of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from ._threads import ThreadState
from .oracles import GracePeriod, Oracles

__all__ = ["NullOracles"]

T = TypeVar("T")


class NullOracles(Oracles):
    """:class:`Oracles` with every check off (same methods, same signatures)."""

    def section_begin(self, key: str, sleepable: bool) -> int:
        return 0

    def section_end(self, key: str, handle: int | None = None) -> None:
        pass

    def begin(self, state: ThreadState, key: str, sleepable: bool) -> int:
        return 0

    def end(self, state: ThreadState, key: str, handle: int | None = None) -> None:
        pass

    def gp_begin(self, key: str, *, blocking: bool = True) -> GracePeriod:
        return GracePeriod(key, "", 0, [])

    def gp_end(self, gp: GracePeriod) -> None:
        pass

    def retire(self, obj: Any, key: str) -> None:
        pass

    def on_read(self, obj: Any, key: str) -> int:
        return 0

    def deref(self, obj: T, keys: str | Sequence[str], *, held: bool = False) -> T:
        return obj

    def might_sleep(self, what: str) -> None:
        pass

    def reader_context(self) -> str:
        return "(oracles off)"

    def thread_exit(self) -> None:
        pass

    def finish(self) -> None:
        pass
