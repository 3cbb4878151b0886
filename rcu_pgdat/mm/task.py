"""Tasks (the model's ``task_struct``): the CPU a worker runs on, its policy, its safe points.

Each worker thread of a run owns one :class:`Task`. Fields and who writes them:

``cpu``
    Written by the task itself at a safe point (load balancing, inside a migration
    region on the CPU it leaves), and by CPU hotplug inside ``stop_machine`` (when no
    task is inside a non-preemptible region): never while the task is inside one, so
    ``numa_node_id()`` is stable there.
``mempolicy``
    Replaced whole under ``policy_lock`` (see ``mempolicy``).
``atomic_depth``, ``stopper``
    Written by the task: ``atomic_depth`` counts open non-preemptible regions
    (``preempt_disable``); ``stopper`` is the CPU stopper the outermost one registered
    with (``stop_machine``), ``None`` outside every region.
"""

from __future__ import annotations

import contextlib
import random
import threading
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import sched
from ..errors import UsageError
from .mempolicy import Mempolicy

if TYPE_CHECKING:
    from ..check._threads import ThreadState
    from .stop_machine import CPUStopper
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
        #: Readers register with the RCU flavor (QSBR) and migrate between CPUs; the
        #: remover and fake writers do not: in the kernel they sleep in their
        #: grace-period waits, off CPU.
        self.reader = reader
        self.cpu = cpu
        self.mempolicy = Mempolicy()
        self.policy_lock = sched.Mutex(f"{name}.policy_lock")
        self.atomic_depth = 0
        self.stopper: CPUStopper | None = None
        self.rw_nesting = 0          # rwlock scheme: nesting of its read sections
        #: What the scheme's read side keeps of this task's thread while it runs
        #: (``Scheme.bind``): the oracles' state of the thread and the flavor's reader
        #: handle; ``None`` outside ``enter()``/``exit()``.
        self.oracle_state: ThreadState | None = None
        self.read_handle: Any = None
        self.interleave_next = 0
        # A task's own choices derive from the run seed and its name only.
        self.rng = random.Random((seed << 32) ^ zlib.crc32(name.encode()))

    # -- lifecycle (called in the task's own thread) -------------------------------

    def enter(self) -> None:
        """Bind this task to the calling thread (and register it with the flavor)."""
        _current.task = self
        if self.reader:
            self.system.scheme.register_thread()
        self.system.scheme.bind(self)

    def exit(self) -> None:
        """Leave: out of the RCU flavor's registry; a section left open is reported."""
        self.read_handle = self.oracle_state = None
        if self.reader:
            self.system.scheme.unregister_thread()
        else:
            self.system.oracles.thread_exit()
        _current.task = None

    # -- non-preemptible regions --------------------------------------------------------

    def preempt_disable(self) -> None:
        """Enter a non-preemptible region (nests); the outermost one holds up a
        stop-machine until it ends, and waits out one in force (``stop_machine``)."""
        self.system.stop_machine.enter(self)

    def preempt_enable(self) -> None:
        """Leave a non-preemptible region."""
        self.system.stop_machine.exit(self)

    # -- scheduling --------------------------------------------------------------------

    def cond_resched(self) -> None:
        """A safe point: report a quiescent state, wait out a stop-machine of this CPU
        and a boosted grace period (``boost``), maybe migrate to another CPU.

        Must be called outside every non-preemptible section.
        """
        if self.atomic_depth:
            raise UsageError(f"{self.name}: cond_resched() inside a non-preemptible "
                             f"section (depth {self.atomic_depth})")
        sched.yield_point("cond_resched")
        if not self.reader:
            return
        self.system.scheme.quiescent_state()
        self.system.stop_machine.preempt_point(self)
        self.system.boost.hold(self)
        if self.rng.random() < self.system.config.migrate_probability:
            self.migrate()

    def migrate(self) -> None:
        """Move to a random online CPU (load balancing).

        A non-preemptible region on the CPU it leaves: a ``cpu_down`` cannot take a CPU
        down between the choice and the store, nor move the task while it moves itself.
        """
        self.preempt_disable()
        try:
            online = self.system.cpus_online()
            if online:
                sched.point("task:migrate")
                self.cpu = online[self.rng.randrange(len(online))]
        finally:
            self.preempt_enable()

    def sleep(self, duration: float) -> None:
        """Sleep off CPU: a QSBR grace period does not wait for us.

        Legal only outside non-sleepable sections (the lockdep checks report it
        otherwise, and a stop-machine waits for the sleeper as its stopper would); a
        sleepable (SRCU) section may stay open across it.
        """
        with self.off_cpu():
            sched.sleep(duration)

    @contextlib.contextmanager
    def off_cpu(self) -> Iterator[None]:
        """Off CPU for the ``with`` block: QSBR-offline unless inside a non-sleepable
        section (a sleep there is reported by the lockdep checks, not hidden)."""
        quiescent = self.reader and self.atomic_depth == 0
        if quiescent:
            self.system.scheme.thread_offline()
        try:
            yield
        finally:
            if quiescent:
                self.system.scheme.thread_online()

    def numa_node_id(self) -> int:
        """The node of the CPU this task runs on (the kernel's ``numa_node_id()``)."""
        return self.system.topology.cpu_to_node[self.cpu]

    def __repr__(self) -> str:
        return (f"<Task {self.name} cpu={self.cpu} node={self.numa_node_id()} "
                f"atomic={self.atomic_depth} policy={self.mempolicy}>")
