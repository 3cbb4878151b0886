"""Tasks (the model's ``task_struct``): the CPU a worker runs on, its policy, its safe points.

Each worker thread of a run owns one :class:`Task`. Fields and who writes them:

``cpu``
    Written by the task itself at a safe point (load balancing), and by CPU hotplug
    inside ``stop_machine`` while the task is parked or off CPU: never while the task
    is inside a non-preemptible section, so ``numa_node_id()`` is stable there.
``mempolicy``
    Replaced whole under ``policy_lock`` (see ``mempolicy``).
``state``, ``atomic_depth``
    Written by the task (``state`` also by the stop-machine protocol it takes part in);
    ``atomic_depth`` counts open non-preemptible read-side sections.
"""

from __future__ import annotations

import random
import threading
import zlib
from typing import TYPE_CHECKING

from .. import sched
from ..errors import UsageError
from .mempolicy import Mempolicy
from .stop_machine import OFFCPU

if TYPE_CHECKING:
    from .system import System

__all__ = ["Task", "current_task"]

_current = threading.local()


def current_task() -> "Task | None":
    """The task of the calling thread, or ``None`` for a thread that is not a task."""
    return getattr(_current, "task", None)


class Task:
    """A worker's view of the kernel: its CPU, memory policy and safe points."""

    def __init__(self, system: "System", name: str, cpu: int, seed: int,
                 reader: bool = True) -> None:
        self.system = system
        self.name = name
        #: Readers take part in stop-machine and in QSBR; the remover and fake writers
        #: do not: in the kernel they sleep in their grace-period waits, off CPU.
        self.reader = reader
        self.cpu = cpu
        self.mempolicy = Mempolicy()
        self.policy_lock = sched.Mutex(f"{name}.policy_lock")
        self.state = OFFCPU
        self.atomic_depth = 0
        self.rw_nesting = 0          # rwlock scheme: nesting of its read sections
        self.interleave_next = 0
        # A task's own choices derive from the run seed and its name only.
        self.rng = random.Random((seed << 32) ^ zlib.crc32(name.encode()))

    # -- lifecycle (called in the task's own thread) -------------------------------

    def enter(self) -> None:
        """Bind this task to the calling thread and put it on a CPU."""
        _current.task = self
        if self.reader:
            self.system.stop_machine.attach(self)
            self.system.scheme.register_thread()
            self.system.stop_machine.arrive(self)

    def exit(self) -> None:
        """Leave: off CPU, out of stop-machine and the RCU flavor's registry."""
        if self.reader:
            self.system.stop_machine.leave(self)
            self.system.stop_machine.detach(self)
            self.system.scheme.unregister_thread()
        else:
            self.system.oracles.thread_exit()
        _current.task = None

    # -- scheduling --------------------------------------------------------------------

    def cond_resched(self) -> None:
        """A safe point: report a quiescent state, honour stop-machine, maybe migrate.

        Must be called outside every non-preemptible section.
        """
        if self.atomic_depth:
            raise UsageError(f"{self.name}: cond_resched() inside a non-preemptible "
                             f"section (depth {self.atomic_depth})")
        sched.yield_point("cond_resched")
        if not self.reader:
            return
        self.system.scheme.quiescent_state()
        self.system.stop_machine.park(self)
        if self.rng.random() < self.system.config.migrate_probability:
            online = self.system.cpus_online()
            if online:
                sched.point("task:migrate")
                self.cpu = online[self.rng.randrange(len(online))]

    def sleep(self, duration: float) -> None:
        """Sleep off CPU: neither a stop-machine nor a QSBR grace period waits for us.

        Legal only outside non-sleepable sections (the lockdep checks report it
        otherwise); a sleepable (SRCU) section may stay open across it.
        """
        if not self.reader:
            sched.sleep(duration)
            return
        quiescent = self.atomic_depth == 0   # else the lockdep checks report the sleep
        self.system.stop_machine.leave(self)
        if quiescent:
            self.system.scheme.thread_offline()
        try:
            sched.sleep(duration)
        finally:
            if quiescent:
                self.system.scheme.thread_online()
            self.system.stop_machine.arrive(self)

    def numa_node_id(self) -> int:
        """The node of the CPU this task runs on (the kernel's ``numa_node_id()``)."""
        return self.system.topology.cpu_to_node[self.cpu]

    def __repr__(self) -> str:
        return (f"<Task {self.name} cpu={self.cpu} node={self.numa_node_id()} "
                f"{self.state} atomic={self.atomic_depth} policy={self.mempolicy}>")
