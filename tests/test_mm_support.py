"""Helpers for the mm tests (imported by the other ``test_mm_*`` files), and their tests.

* :func:`built` builds a :class:`System` directly (QSBR or memb, one SRCU domain), with
  every violation kept, and tears its callback workers down afterwards.
* :class:`Tasks` runs model tasks in real, named threads that act only when told to
  (``rcu_pgdat.check.testing.Actors`` underneath). Between two steps a task waits for
  its next command the way a kernel task sleeps: outside a non-preemptible section,
  QSBR-offline, so grace periods do not wait for an idle task (nor does stop-machine,
  which waits only for non-preemptible regions). Inside a ``pgdat_remove_read_lock()``
  section it stays online and inside its region, as a reader preempted inside its
  section would: the remover must wait for it.
* :class:`GatedRemover` is the corrected remover with an event at the start of every
  step and optional gates, so a test can hold the remover before a step and act then.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

import pytest

from rcu_pgdat import sched
from rcu_pgdat.check import Collector
from rcu_pgdat.check.testing import STEP_TIMEOUT, Actors
from rcu_pgdat.mm.hotplug import OK, Remover
from rcu_pgdat.mm.mempolicy import MPOL_PREFERRED, Mempolicy, set_mempolicy
from rcu_pgdat.mm.page_alloc import Page, alloc_pages
from rcu_pgdat.mm.system import System, SystemConfig
from rcu_pgdat.mm.task import Task
from rcu_pgdat.mm.topology import Topology
from rcu_pgdat.rcu import QSBR, Memb
from rcu_pgdat.rcu.srcu import SRCU

R = TypeVar("R")

#: Small zones: a few allocations fill a node (default: (64, 256, 256)).
SMALL_ZONES = (2, 4, 4)


@contextlib.contextmanager
def built(*, nodes: int = 4, cpus: int = 8, pages: tuple[int, ...] = (64, 256, 256),
          flavor: Any = "qsbr", checks: bool = True, **kwargs: Any) -> Iterator[System]:
    """A System built directly; ``kwargs`` go to SystemConfig or System (``*_cls``).
    ``flavor``: ``"qsbr"``, ``"memb"`` or a flavor object.

    With ``checks`` the oracles' might-sleep hook and the collector's excepthook are
    installed for the block (and restored after it).
    """
    classes = {k: kwargs.pop(k) for k in list(kwargs) if k.endswith("_cls")}
    config = SystemConfig(topology=Topology(nr_nodes=nodes, nr_cpus=cpus,
                                            pages_per_zone=pages), **kwargs)
    rcu = QSBR() if flavor == "qsbr" else Memb() if flavor == "memb" else flavor
    system = System(config, rcu, SRCU("pgdat"), Collector(stop_on_first=False), **classes)
    with contextlib.ExitStack() as stack:
        if checks:
            stack.enter_context(system.collector.install_excepthook())
            stack.enter_context(system.oracles.might_sleep_checks())
        try:
            yield system
        finally:
            system.scheme.shutdown()


def kinds(system: System) -> list[str]:
    """The kinds of every violation reported so far."""
    return [str(v.kind) for v in system.collector.violations]


def subjects(system: System) -> list[str]:
    """``kind subject`` of every violation reported so far."""
    return [f"{v.kind} {v.subject}" for v in system.collector.violations]


def alloc_on(tasks: "Tasks", name: str, system: System, nid: int, order: int = 0) -> Page:
    """Task ``name`` allocates a block on node ``nid`` (preferred policy), as a step."""
    set_mempolicy(system, tasks[name], Mempolicy(MPOL_PREFERRED, (nid,)))
    page = tasks.run(name, alloc_pages, system, tasks[name], order)
    assert page is not None and page.nid == nid
    return page


class Tasks:
    """Model tasks in named threads that run steps on command (see the module doc)."""

    def __init__(self, system: System, *names: str, reader: bool = True) -> None:
        self.system = system
        self.actors = Actors(*names)
        self.tasks = {name: system.new_task(name, reader=reader) for name in names}
        self._idle: dict[str, bool] = {}

    def __enter__(self) -> Tasks:
        self.actors.__enter__()
        for name, task in self.tasks.items():
            self.actors.run(name, self._enter, task)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for name, task in self.tasks.items():
                self.actors.run(name, self._exit, task)
        finally:
            self.actors.__exit__(*exc)

    def __getitem__(self, name: str) -> Task:
        return self.tasks[name]

    # -- in the task's thread -------------------------------------------------------

    def _enter(self, task: Task) -> None:
        task.enter()
        self._go_idle(task)

    def _exit(self, task: Task) -> None:
        self._wake(task)
        task.exit()

    def _go_idle(self, task: Task) -> None:
        """Wait for the next command like a sleeping task (module doc)."""
        offline = task.reader and not task.atomic_depth
        if offline:
            self.system.scheme.thread_offline()
        self._idle[task.name] = offline

    def _wake(self, task: Task) -> None:
        if self._idle.pop(task.name, False):
            self.system.scheme.thread_online()

    def _step(self, task: Task, fn: Callable[..., R], args: tuple[Any, ...]) -> R:
        self._wake(task)
        try:
            return fn(*args)
        finally:
            self._go_idle(task)

    # -- from the test ----------------------------------------------------------------

    def start(self, name: str, fn: Callable[..., R], *args: Any) -> Future[R]:
        """Hand ``fn(*args)`` to task ``name``; returns at once."""
        return self.actors.start(name, self._step, self.tasks[name], fn, args)

    def run(self, name: str, fn: Callable[..., R], *args: Any) -> R:
        """Have task ``name`` run ``fn(*args)``; returns its result or raises its error."""
        return self.start(name, fn, *args).result(STEP_TIMEOUT)


class Pauser(sched.Scheduler):
    """Free-running, except that a chosen thread stops at a chosen schedule point.

    ``pause(thread, label)`` returns ``(reached, gate)``: the thread's next pass over
    ``label`` sets ``reached`` and waits for ``gate`` (plain ``threading.Event``s: this
    is test machinery, and a wait here must not count as a sleep inside the section the
    paused thread may be in). Install it with ``sched.install(Pauser())``.
    """

    name = "pauser"

    def __init__(self) -> None:
        self._rules: dict[tuple[str, str], tuple[threading.Event, threading.Event]] = {}

    def pause(self, thread: str, label: str) -> tuple[threading.Event, threading.Event]:
        """Stop ``thread`` at its next ``sched.point(label)`` until the gate is set."""
        rule = (threading.Event(), threading.Event())
        self._rules[(thread, label)] = rule
        return rule

    def point(self, label: str) -> None:
        rule = self._rules.pop((threading.current_thread().name, label), None)
        if rule is not None:
            reached, gate = rule
            reached.set()
            assert gate.wait(STEP_TIMEOUT), f"pause at {label} never released"


#: The remover's step methods, in the order ``offline_node``/``online_node`` call them.
STEPS = ("offline_cpus", "isolate_zones", "offline_pages", "notify_going_offline",
         "unpublish", "build_zonelists", "wait_grace_period", "release_node", "rollback",
         "prepare_pgdat", "publish", "online_cpus")


class GatedRemover(Remover):
    """The corrected remover; ``reached[step]`` is set as each step starts, and a step
    held with :meth:`hold` waits for its gate first. Changes no step's behaviour; a
    broken remover gets gates as ``class G(GatedRemover, BrokenRemover)``."""

    def __init__(self, system: System) -> None:
        super().__init__(system)
        self.reached = {step: sched.Event(f"reached {step}") for step in STEPS}
        self.gates: dict[str, sched.Event] = {}
        self.order: list[str] = []

    def hold(self, step: str) -> sched.Event:
        """Make the remover wait before ``step`` until the returned event is set."""
        gate = sched.Event(f"gate {step}")
        self.gates[step] = gate
        return gate

    def wait_reached(self, step: str) -> None:
        """From the test: block until the remover started ``step`` (bounded)."""
        assert self.reached[step].wait(STEP_TIMEOUT), f"remover never reached {step}"

    def _at(self, step: str) -> None:
        self.order.append(step)
        self.reached[step].set()
        gate = self.gates.get(step)
        if gate is not None:
            assert gate.wait(STEP_TIMEOUT), f"gate before {step} never opened"


def _gated(step: str) -> Callable[..., Any]:
    def method(self: GatedRemover, *args: Any) -> Any:
        self._at(step)
        # The next class in the MRO: a broken remover mixed in behind GatedRemover.
        return getattr(super(GatedRemover, self), step)(*args)
    method.__name__ = step
    return method


for _step in STEPS:
    setattr(GatedRemover, _step, _gated(_step))


# -- the helpers' own tests ------------------------------------------------------------


def test_tasks_go_offline_between_steps_and_stay_in_their_sections() -> None:
    with built() as system, Tasks(system, "reader") as tasks:
        task = tasks["reader"]
        assert task.stopper is None and system.stop_machine.running_tasks() == []
        # Inside a non-preemptible section the task stays in its region between steps.
        tasks.run("reader", system.scheme.read_lock, task)
        assert task.atomic_depth == 1 and task.stopper is system.stop_machine.cpus[task.cpu]
        assert system.stop_machine.running_tasks() == ["reader"]
        tasks.run("reader", system.scheme.read_unlock, task)
        assert task.stopper is None and system.stop_machine.running_tasks() == []
        # An idle task holds neither a grace period nor a stop-machine up.
        system.scheme.synchronize_all()
        assert system.stop_machine.run(lambda: 7) == 7
    assert system.collector.ok


def test_gated_remover_runs_the_corrected_steps_in_order() -> None:
    with built(remover_cls=GatedRemover) as system:
        remover = system.remover
        assert isinstance(remover, GatedRemover)
        with Actors("remover") as actors:
            assert actors.run("remover", remover.offline_node, 2) == OK
            assert actors.run("remover", remover.online_node, 2)
        assert remover.order == ["offline_cpus", "isolate_zones", "offline_pages",
                                 "notify_going_offline", "unpublish", "build_zonelists",
                                 "wait_grace_period", "release_node", "prepare_pgdat",
                                 "publish", "online_cpus"]
    assert system.collector.ok


def test_a_held_gate_stops_the_remover_before_its_step() -> None:
    with built(remover_cls=GatedRemover) as system, Actors("remover") as actors:
        remover = system.remover
        assert isinstance(remover, GatedRemover)
        gate = remover.hold("unpublish")
        done = actors.start("remover", remover.offline_node, 1)
        remover.wait_reached("unpublish")
        assert system.node_online.test(1)           # held before the step: still online
        gate.set()
        assert done.result(STEP_TIMEOUT) == OK
        assert not system.node_online.test(1)
    with pytest.raises(ValueError):
        Actors("a", "a")
