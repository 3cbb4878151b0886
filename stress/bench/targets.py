"""Known-bad code to measure detection time on, until the mutant catalogue plugs in.

Each target is a name and how to run it (see ``detection.Target``): a small *program*
(a ``rcu_pgdat.sched.Program`` factory, runnable under every scheduling mode) and/or a
whole-model *run configuration* (``stress.run.RunConfig`` fields, runnable in the
free-running modes ``stress.run`` supports).

The bugs:

``no-wait-rcu``
    A flavor whose ``synchronize()`` does not wait for readers (:class:`NoWaitRCU`, a
    memb flavor with an empty reader wait). Program: a reader dereferences the
    published node inside a section and reads it after a schedule point; the updater
    replaces the node, calls ``synchronize()`` and frees the old one. Caught when the
    free lands between the reader's dereference and its read.
``wrong-flavor-wait``
    The RFC as posted, in miniature: the reader holds an SRCU section, the updater
    waits for an RCU grace period (another flavor, which does not wait for SRCU
    readers) before it frees. Model run: ``RunConfig(remover="posted")``.

Objects come from the oracles' tracked allocator: a read of a freed node raises
``ViolationError`` in the reader, which is how every mode sees the failure.

Why the obvious program would hide the bug from naive threads only by luck: a reader
that reads the node *immediately* after dereferencing it leaves no window; the schedule
point between the two (``reader:use``) is the window a preemption must hit, which is
what makes the target narrow enough to rank the modes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rcu_pgdat import sched
from rcu_pgdat.check import Collector, Oracles, Tracked, TrackedAllocator
from rcu_pgdat.rcu import Memb, QSBR
from rcu_pgdat.rcu.srcu import SRCU

__all__ = ["NoWaitRCU", "ROUNDS", "NO_WAIT_FLAVOR", "rcu_program", "srcu_program",
           "no_wait_program", "wrong_flavor_program"]

#: Read-side sections per reader (and updates by the updater) in one program run.
ROUNDS = 8


class NoWaitRCU(Memb):
    """Broken: the grace period does not wait for any reader (a plug-in-shaped mutant)."""

    name = "nowait"

    def _wait_for_readers(self) -> None:
        sched.point("nowait:gp")          # still a step, but nothing is waited for


class _Node(Tracked):
    value: int


def _program(lock: Callable[[], Any], unlock: Callable[[Any], None],
             synchronize: Callable[[], None], rounds: int) -> sched.Program:
    """Reader and updater over one published node (see the module docstring)."""
    memory = TrackedAllocator(Oracles(Collector(stop_on_first=False)), quarantine=4)
    head = [memory.alloc(_Node, "node", value=0)]      # head[0]: the published pointer

    def reader() -> None:
        for _ in range(rounds):
            token = lock()
            sched.point("reader:deref")
            node = head[0]               # rcu_dereference
            sched.point("reader:use")    # the window: a free here is a use-after-free
            _ = node.value
            unlock(token)
            sched.point("reader:out")

    def updater() -> None:
        for i in range(1, rounds + 1):
            new = memory.alloc(_Node, "node", value=i)
            sched.point("updater:publish")
            old, head[0] = head[0], new  # rcu_assign_pointer
            sched.point("updater:sync")
            synchronize()
            sched.point("updater:free")
            memory.free(old)

    return sched.Program({"reader": reader, "updater": updater})


def rcu_program(make_rcu: Callable[[], Any] = Memb, rounds: int = ROUNDS) -> sched.Program:
    """A fresh reader/updater program over an RCU flavor made by ``make_rcu``."""
    rcu = make_rcu()

    def unlock(_token: Any) -> None:
        rcu.read_unlock()
    return _program(rcu.read_lock, unlock, rcu.synchronize, rounds)


def srcu_program(wait: str = "srcu", rounds: int = ROUNDS) -> sched.Program:
    """A fresh program of SRCU readers whose updater waits with ``wait``: ``srcu``
    (correct) or ``rcu`` (a QSBR grace period: the wrong flavor, it waits for nobody)."""
    srcu = SRCU("bench")
    synchronize = srcu.synchronize if wait == "srcu" else QSBR("bench").synchronize
    return _program(srcu.read_lock, srcu.read_unlock, synchronize, rounds)


def no_wait_program() -> sched.Program:
    """A fresh ``no-wait-rcu`` program (a ``ProgramFactory``)."""
    return rcu_program(NoWaitRCU)


def wrong_flavor_program() -> sched.Program:
    """A fresh ``wrong-flavor-wait`` program: SRCU readers, an RCU grace period."""
    return srcu_program("rcu")


#: Import path of :class:`NoWaitRCU` for ``RunConfig(flavor=...)``.
NO_WAIT_FLAVOR = f"{__name__}:NoWaitRCU"
