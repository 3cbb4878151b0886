"""Small programs with narrow races, each with a correct twin.

The scheduler's own test bed: the tests prove that the controlled modes find the broken
variants and pass the correct ones, and ``rcu-pgdat-stress bench --only seeds`` counts
how many seeds each mode needs. Each function returns a
:data:`~rcu_pgdat.sched.ProgramFactory`; every call of the factory builds fresh shared
state, as replay and exploration require.

The races are narrow on purpose: the bad window is one schedule point wide and sits
among ``work`` points of thread-local work, so free-running threads rarely line up on
it, while a controlled scheduler can switch at every point.
"""

from __future__ import annotations

from typing import Any, Callable

from rcu_pgdat import sched
from rcu_pgdat.sched import Program, ProgramFactory

__all__ = ["lost_update", "use_after_free", "publish_before_init", "RACES"]


def _work(n: int) -> None:
    """``n`` steps of thread-local work: schedule points that touch nothing shared."""
    for _ in range(n):
        sched.point("local work")


class _Guard:
    """A Mutex in the correct variant, nothing at all in the broken one."""

    def __init__(self, correct: bool, name: str) -> None:
        self._mutex = sched.Mutex(name) if correct else None

    def __enter__(self) -> None:
        if self._mutex is not None:
            self._mutex.acquire()

    def __exit__(self, *exc: object) -> None:
        if self._mutex is not None:
            self._mutex.release()


def lost_update(correct: bool = False, work: int = 6) -> ProgramFactory:
    """Check-then-act on a counter: load, point, store. ``inc-a`` works ``work`` points
    before its update and ``inc-b`` after, so their windows rarely overlap.

    Bug (depth 2): both load before either stores. Correct: load+store under a Mutex.
    """
    def make() -> Program:
        box = {"n": 0}
        guard = _Guard(correct, "counter")

        def update() -> None:
            with guard:
                sched.point("counter.load")
                value = box["n"]
                sched.point("counter.store")       # the window: the other load may land here
                box["n"] = value + 1

        def inc_a() -> None:
            _work(work)
            update()

        def inc_b() -> None:
            update()
            _work(work)

        def check() -> None:
            assert box["n"] == 2, f"lost update: counter is {box['n']}, expected 2"
        return Program({"inc-a": inc_a, "inc-b": inc_b}, check)
    return make


def use_after_free(correct: bool = False, work: int = 6, lookups: int = 6) -> ProgramFactory:
    """A reader checks ``alive`` then uses ``data``; the remover clears ``alive`` and
    frees ``data`` after ``work`` points.

    Bug: the free lands between a reader's check and its use. Correct: the reader's
    check+use and the remover's clear+free are each under one Mutex.
    """
    def make() -> Program:
        node: dict[str, Any] = {"alive": True, "data": [1, 2, 3]}
        guard = _Guard(correct, "node")

        def reader() -> None:
            for _ in range(lookups):
                with guard:
                    sched.point("reader.check")
                    if node["alive"]:
                        sched.point("reader.use")  # the window: pairs with remover.free
                        assert node["data"] is not None, "use after free: data is None"
                sched.point("reader.idle")

        def remover() -> None:
            _work(work)
            with guard:
                sched.point("remover.clear")
                node["alive"] = False
                sched.point("remover.free")
                node["data"] = None
        return Program({"reader": reader, "remover": remover})
    return make


def publish_before_init(correct: bool = False, work: int = 6,
                        polls: int = 8) -> ProgramFactory:
    """The writer publishes an object, then initializes it; a reader polls the slot.

    Bug: the reader sees the object between publish and init. Correct: init first.
    """
    def make() -> Program:
        slot: dict[str, dict[str, int] | None] = {"obj": None}

        def writer() -> None:
            _work(work)
            obj: dict[str, int] = {"value": 0}
            if correct:
                obj["value"] = 42
            sched.point("writer.publish")
            slot["obj"] = obj
            sched.point("writer.init")             # the window: pairs with reader.use
            obj["value"] = 42

        def reader() -> None:
            for _ in range(polls):
                sched.point("reader.load")
                obj = slot["obj"]
                if obj is not None:
                    sched.point("reader.use")
                    assert obj["value"] == 42, f"saw uninitialized object {obj}"
                    return
        return Program({"writer": writer, "reader": reader})
    return make


#: name -> factory maker(correct: bool) -> ProgramFactory
RACES: dict[str, Callable[..., ProgramFactory]] = {
    "lost-update": lost_update,
    "use-after-free": use_after_free,
    "publish-before-init": publish_before_init,
}
