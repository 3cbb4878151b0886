"""``stop_machine()``: run a function while no CPU is inside a non-preemptible region.

What it guarantees
------------------
While ``fn`` runs, no task is inside a non-preemptible region, and none enters one
until ``fn`` has returned. The model's non-preemptible regions are the non-sleepable
read-side sections (``pgdat_remove_read_lock()``, counted in ``task.atomic_depth``)
and a task's own migration to another CPU. The callers rely on exactly that:

* the ``stop-machine`` zonelist rebuild rewrites lists in place: no ``alloc_pages()``
  walk (which runs inside a non-sleepable section) sees a half-written list;
* ``cpu_down`` moves tasks off a CPU by writing ``task.cpu``: a task's CPU never changes
  inside its non-preemptible section, so ``numa_node_id()`` is stable there, and no
  migration races with the move.

Preemptible code (outside every such region: sleepable SRCU sections, rwsem holders,
the loops between sections) is not held up, as in the kernel: it may be preempted
anywhere, and a zonelist or ``task.cpu`` it reads there may change under it.

Why per CPU, as the kernel does it
----------------------------------
The kernel's stop_machine queues a stopper on every online CPU; a stopper runs as soon
as its CPU leaves the non-preemptible region it is in (a CPU runs one task at a time),
and ``fn`` runs once every CPU runs its stopper. Its cost grows with CPUs, not with the
tasks in the system. The model does the same: each CPU has a :class:`CPUStopper` with a
``stopped`` flag and the set of its tasks inside a non-preemptible region (several model
tasks share a CPU; they are the tasks the CPU's stopper would have to wait out). A task
outside every region is not waited for and has no state for a stopper to scan; while
its CPU is stopped it does not run past its next safe point (``preempt_point``) or its
next region entry, as a task preempted by the stopper would not run at all. A stop costs
one flag store and one wait per CPU.

Tasks held by a stop wait through the controlled scheduler when one is active (a task
whose CPU is stopped is simply not runnable); free-running, they sleep on one OS event
that the stopper sets when it ends, rather than polling: hundreds of tasks polling every
millisecond would take the interpreter from the very tasks the stopper waits for.

The pairing that makes it safe is the Dekker pattern between a task entering a region
on CPU ``c`` and the stopper:

    task (entering a region)            stopper
    A: c.inside.add(task)               C: c.stopped = True      (every online CPU)
    B: if c.stopped: back out, wait     D: wait until c.inside is empty  (each CPU)

Either the task's B sees C (it removes itself, waits until the stop is over, and tries
again on the CPU it is on then), or the stopper's D sees A (and waits for the task to
leave its region). Testing ``stopped`` *before* adding itself would let both miss each
other: the task runs its section while ``fn`` rewrites what it reads
(``tests/test_mm_topology.py`` shows it with that variant). A and D are set operations
(atomic in CPython, and under the set's own lock in free-threaded CPython); B and C are
single attribute loads and stores. Once D has seen a CPU's set empty with its flag set,
the set stays empty until the flag is cleared, so the stopper waits for each CPU once.

A task's CPU is written only at a safe point by the task itself (inside a migration
region, on the CPU it leaves) or by ``fn`` of a ``cpu_down`` (while no task is in a
region); so the CPU a task entered a region on is the one it leaves it on.

Stoppers are serialized by ``_lock`` (one stop-machine at a time, as in the kernel).
"""

from __future__ import annotations

import threading
from typing import Callable, Protocol, TypeVar

from .. import sched
from ..errors import UsageError

__all__ = ["StopMachine", "CPUStopper", "Participant"]

T = TypeVar("T")


class Participant(Protocol):
    """What stop-machine needs of a task: its name, its CPU, its regions' nesting and
    the stopper its outermost region registered with."""

    name: str
    cpu: int
    atomic_depth: int
    stopper: "CPUStopper | None"


class CPUStopper:
    """One CPU's stopper (``struct cpu_stopper``): its flag and the tasks it waits for.

    ``inside`` is changed only by the tasks themselves (A, and backing out); ``stopped``
    only by the stopper holding the stop-machine lock.
    """

    __slots__ = ("cpu", "stopped", "inside", "_label")

    def __init__(self, cpu: int) -> None:
        self.cpu = cpu
        self.stopped = False
        self.inside: set[Participant] = set()
        self._label = f"cpu{cpu}: stopper waits for its non-preemptible tasks"

    def idle(self) -> bool:
        """No task of this CPU is inside a non-preemptible region."""
        return not self.inside

    def running(self) -> bool:
        """The stop is over: tasks of this CPU may enter regions again."""
        return not self.stopped

    def __repr__(self) -> str:
        names = sorted(t.name for t in list(self.inside))
        return f"<cpu{self.cpu}{' stopped' if self.stopped else ''} inside={names}>"


class StopMachine:
    """Runs functions with no CPU inside a non-preemptible region (module docstring)."""

    def __init__(self, nr_cpus: int) -> None:
        self._lock = sched.Mutex("stop_machine")
        self.cpus = [CPUStopper(cpu) for cpu in range(nr_cpus)]
        self.active = False
        self.runs = 0
        #: Scheduler time spent waiting for CPUs to leave their regions, over all runs.
        self.wait_time = 0.0
        #: Set when the stop in force (or the last one) ends; each stop installs a fresh
        #: one, so that hundreds of tasks woken by the last stop's end, taking its lock
        #: on their way out, never hold up the next stop.
        self._resumed = threading.Event()
        self._resumed.set()

    def running_tasks(self) -> list[str]:
        """Tasks inside a non-preemptible region now (what a stop waits for)."""
        return sorted(t.name for cpu in self.cpus for t in list(cpu.inside))

    def run(self, fn: Callable[[], T], what: str = "stop_machine") -> T:
        """Run ``fn`` with no task inside a non-preemptible region; returns its result.

        Raises ``UsageError`` when the caller is inside one itself: its CPU's stopper
        would wait for it forever (in the kernel, stop_machine() may sleep, which a
        non-preemptible section forbids).
        """
        me = sched.current_name()
        if me in self.running_tasks():
            raise UsageError(f"{what}: stop_machine() called by {me} inside a "
                             "non-preemptible section, which would wait for itself; "
                             "call it outside every pgdat_remove_read_lock() section")
        with self._lock:
            self.active = True
            resumed = self._resumed = threading.Event()   # before C: see _wait_resumed
            try:
                for cpu in self.cpus:
                    cpu.stopped = True                   # C: pairs with B in enter()
                sched.point("stop_machine:stopping")
                started = sched.now()
                for cpu in self.cpus:                    # D: pairs with A in enter()
                    if not cpu.idle():
                        sched.wait_until(cpu.idle, f"{what}: {cpu._label}", ready=cpu.idle)
                self.wait_time += sched.now() - started
                sched.point("stop_machine:stopped")
                result = fn()
                self.runs += 1
                return result
            finally:
                for cpu in self.cpus:
                    cpu.stopped = False
                self.active = False
                resumed.set()

    # -- the task side ---------------------------------------------------------------

    def enter(self, task: Participant) -> None:
        """``task`` enters a non-preemptible region (``preempt_disable()``; regions nest,
        counted in ``task.atomic_depth``); the outermost one registers on the task's
        CPU and waits out a stop in force there.

        The whole of ``preempt_disable`` is here, in one call: readers enter a region
        at every section."""
        depth = task.atomic_depth
        if depth:
            task.atomic_depth = depth + 1
            return
        while True:
            cpu = self.cpus[task.cpu]
            cpu.inside.add(task)                         # A: pairs with D in run()
            sched.point("stop_machine:enter")
            if not cpu.stopped:                          # B: pairs with C in run()
                task.stopper = cpu
                task.atomic_depth = 1
                return
            cpu.inside.discard(task)
            self._wait_resumed(task, cpu)

    def preempt_point(self, task: Participant) -> None:
        """At a safe point: while the task's CPU runs its stopper, the task does not run."""
        cpu = self.cpus[task.cpu]
        while cpu.stopped:
            self._wait_resumed(task, cpu)
            cpu = self.cpus[task.cpu]

    def _wait_resumed(self, task: Participant, cpu: CPUStopper) -> None:
        """Wait until ``cpu`` runs tasks again (module docstring: how)."""
        # Preempted by the stopper, not asleep: no might-sleep announcement.
        scheduler = sched.active()
        if scheduler.controlled:
            scheduler.wait_until(sched.ReadyCond(cpu.running, cpu.running),
                                 f"{task.name}: cpu{cpu.cpu} stopped")
        else:
            # A stop installs its event before it sets any flag and sets it after it
            # cleared them all, so the event read after seeing the flag set belongs to
            # the stop in force or a later one, and is set when that stop ends: no
            # timeout is needed (one would wake hundreds of parked tasks for nothing).
            while cpu.stopped:
                self._resumed.wait()

    def exit(self, task: Participant) -> None:
        """``task`` leaves a non-preemptible region (``preempt_enable()``); the outermost
        one deregisters from its CPU."""
        depth = task.atomic_depth = task.atomic_depth - 1
        if depth:
            return
        cpu = task.stopper
        if cpu is None:
            raise UsageError(f"{task.name}: leaves a non-preemptible region it never "
                             "entered")
        task.stopper = None
        cpu.inside.discard(task)

    def __repr__(self) -> str:
        return (f"<StopMachine {'active' if self.active else 'idle'} runs={self.runs} "
                f"cpus={len(self.cpus)} running={self.running_tasks()}>")
