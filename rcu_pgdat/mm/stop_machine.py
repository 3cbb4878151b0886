"""``stop_machine()``: run a function while every task is parked at a safe point.

Why it is correct
-----------------
The kernel's stop_machine runs a stopper thread on every CPU; each spins with
interrupts off until the function has run. A task in a non-preemptible region (an
``rcu_read_lock()`` section in the RFC's kernel) cannot be stopped inside it, so the
function never runs while any CPU is inside one; a task that is asleep is not on a CPU
and does not hold anything up.

The model has no CPUs to take over, so tasks take part: each task is ``RUNNING``,
``PARKED`` (at a safe point, by its own ``cond_resched()``) or ``OFFCPU`` (blocked or
asleep through :meth:`Task.block`). ``stop_machine(fn)`` sets ``active``, waits until no
task is ``RUNNING``, runs ``fn`` and clears ``active``.

The pairing that makes this safe is the Dekker pattern between a task coming back on
CPU and the stopper starting:

    task (back on CPU)               stopper
    A: state = RUNNING               C: active = True
    B: if active: park               D: wait until no task is RUNNING

Either the task's B sees C (and parks), or the stopper's D sees A (and waits for the
task to reach its next safe point). Storing ``RUNNING`` *after* testing ``active`` would
let both miss each other: the task runs on while ``fn`` runs. Each of A-D is one
attribute store or load, so the argument holds without the GIL.

Safe points are outside non-preemptible sections by construction: ``cond_resched()``
refuses to park a task that is inside one (the caller is told, not silently hung), which
is what lets stop-machine replace a grace period for non-sleepable readers.
"""

from __future__ import annotations

from typing import Callable, Protocol, TypeVar

from .. import sched
from ..errors import UsageError

__all__ = ["StopMachine", "RUNNING", "PARKED", "OFFCPU", "EXITED"]

RUNNING = "running"     # on a CPU, between safe points
PARKED = "parked"       # held at a safe point by an active stop-machine
OFFCPU = "offcpu"       # asleep or blocked: not on a CPU
EXITED = "exited"       # the task's thread ended

T = TypeVar("T")


class Participant(Protocol):
    """What stop-machine needs of a task: its name, state and non-preemptible depth."""

    name: str
    state: str
    atomic_depth: int


class StopMachine:
    """Runs functions with every participating task parked or off CPU.

    ``_lock`` serialises stoppers (one stop-machine at a time, as in the kernel).
    ``_tasks`` (a list, replaced whole under ``_lock``) is the set of participants;
    ``active`` is written only by the stopper holding ``_lock``.
    """

    def __init__(self) -> None:
        self._lock = sched.Mutex("stop_machine")
        self._tasks: list[Participant] = []
        self.active = False
        self.runs = 0

    def attach(self, task: Participant) -> None:
        """Make ``task`` a participant (it starts ``OFFCPU`` until it first runs)."""
        with self._lock:
            self._tasks = self._tasks + [task]

    def detach(self, task: Participant) -> None:
        """Remove an exited task."""
        with self._lock:
            self._tasks = [t for t in self._tasks if t is not task]

    def _all_stopped(self) -> bool:
        return all(t.state != RUNNING for t in self._tasks)

    def running_tasks(self) -> list[str]:
        """Names of the participants that hold a stop-machine up (for stall reports)."""
        return [t.name for t in self._tasks if t.state == RUNNING]

    def run(self, fn: Callable[[], T], what: str = "stop_machine") -> T:
        """Run ``fn`` with no participant on a CPU; returns what ``fn`` returns.

        Raises ``UsageError`` when called by a participant that is on a CPU: it would
        wait for itself to park, forever.
        """
        me = sched.current_name()
        if any(t.name == me and t.state == RUNNING for t in self._tasks):
            raise UsageError(f"{what}: stop_machine() called by participating task {me}, "
                             "which would wait for itself; call it from a task that does "
                             "not take part (Task(reader=False)) or go off CPU first")
        with self._lock:
            self.active = True                           # C: pairs with B in arrive()
            try:
                sched.point("stop_machine:stopping")
                sched.wait_until(self._all_stopped, f"{what}: every task parked")  # D
                sched.point("stop_machine:stopped")
                result = fn()
                self.runs += 1
                return result
            finally:
                self.active = False

    # -- the task side ---------------------------------------------------------------

    def arrive(self, task: Participant) -> None:
        """``task`` comes (back) on a CPU: mark it running, then honour a stop in force."""
        task.state = RUNNING                             # A: pairs with D in run()
        sched.point("stop_machine:arrive")
        if self.active:                                  # B: pairs with C in run()
            self.park(task)

    def park(self, task: Participant) -> None:
        """At a safe point: while a stop-machine is in force, wait it out parked.

        A loop, not a call back into ``arrive``: a task that keeps meeting the next
        stop-machine as it comes back (the remover takes a node's CPUs down one
        stop-machine each) must not grow its stack once per stop.
        """
        while self.active:                               # B (again, after each A)
            if task.atomic_depth:
                raise UsageError(f"{task.name}: cond_resched() inside a non-preemptible "
                                 f"section (depth {task.atomic_depth}); a safe point must "
                                 "be outside every pgdat_remove_read_lock() section")
            task.state = PARKED
            sched.wait_until(lambda: not self.active,
                             f"{task.name}: parked for stop_machine")
            task.state = RUNNING                         # A: pairs with D in run()
            sched.point("stop_machine:arrive")

    def leave(self, task: Participant) -> None:
        """``task`` goes off CPU (to sleep or block); it no longer holds a stop up."""
        task.state = OFFCPU

    def __repr__(self) -> str:
        return (f"<StopMachine {'active' if self.active else 'idle'} runs={self.runs} "
                f"tasks={len(self._tasks)} running={self.running_tasks()}>")
