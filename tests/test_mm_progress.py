"""Progress that means progress: what the model notes for the controlled livelock bound.

The livelock bound of a controlled run counts steps since the last ``sched.progress``.
The model notes progress where a configuration makes it: a finished offline or online
(every scheme), a grace period or a callback (``rcu``, ``reuse``), a write-side section
of the semaphore (``rwlock``, which has no grace period at all). A correct run of any
scheme must never be called a livelock, and a run that truly stops making progress
while its threads keep running must still be.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_mm_support import built

from rcu_pgdat import sched
from rcu_pgdat.check import Kind
from rcu_pgdat.mm.hotplug import REMOVERS, Remover
from rcu_pgdat.mm.system import System, SystemConfig
from rcu_pgdat.mm.task import Task
from rcu_pgdat.mm.topology import ZONE_NAMES, Topology
from rcu_pgdat.rcu import QSBR
from rcu_pgdat.rcu.srcu import SRCU
from stress import controlled, workers
from stress.controlled import run_controlled, sweep_seeds
from stress.run import RunConfig

#: Steps without progress that the tests below call a livelock.
BOUND = 1500


@pytest.mark.parametrize("scheme, kinds", [
    ("rcu", ("remover cycle", "rcu:qsbr: grace period", "rcu:qsbr: callback",
             "srcu:pgdat: grace period", "srcu:pgdat: callback")),
    ("reuse", ("remover cycle", "rcu:qsbr: grace period", "rcu:qsbr: callback",
               "srcu:pgdat: grace period", "srcu:pgdat: callback")),
    ("rwlock", ("remover cycle", "rwsem pgdat_rwsem: write section")),
])
def test_each_scheme_names_the_progress_it_makes(scheme: str, kinds: tuple[str, ...]) -> None:
    with built(scheme=scheme) as system:
        assert system.progress_kinds() == (*kinds, "node zonelist rebuilt")


def _rwlock_run(leak: bool, cycles: int = 100, reads: int = 100_000) -> sched.ProgramFactory:
    """A remover offlining and onlining node 1 under the ``rwlock`` scheme, beside a
    reader that reads until the remover is done. With ``leak`` the reader's first
    section never ends (a missed ``pgdat_remove_read_unlock()``): the remover waits in
    ``down_write`` for good while the reader runs on through its nested sections, a
    true livelock."""
    def make() -> sched.Program:
        config = SystemConfig(topology=Topology(nr_nodes=2, nr_cpus=2), scheme="rwlock",
                              offline_timeout=100.0)
        system = System(config, QSBR(), SRCU("pgdat"))
        reader_task = system.new_task("reader")
        remover_task = system.new_task("remover", reader=False)
        scheme = system.scheme
        finished = sched.Event("remover finished")

        def remover() -> None:
            remover_task.enter()
            for _ in range(cycles):
                system.remover.offline_node(1)
                system.remover.online_node(1)
            remover_task.exit()
            finished.set()

        def reader() -> None:
            reader_task.enter()
            for i in range(reads):
                if finished.is_set():
                    break
                scheme.read_lock(reader_task)
                system.NODE_DATA(0)
                if not (leak and i == 0):
                    scheme.read_unlock(reader_task)
                reader_task.cond_resched()
            if not leak:
                reader_task.exit()
        return sched.Program({"remover": remover, "reader": reader})
    return make


@pytest.mark.parametrize("strategy", ["random", "pct"])
def test_a_scheme_without_grace_periods_is_not_a_livelock(strategy: str) -> None:
    result = sched.run_program(_rwlock_run(leak=False), sched.make_strategy(strategy, 1),
                               max_steps=200_000, livelock_steps=BOUND)
    assert result.outcome is sched.Outcome.OK, result.describe()
    # Long enough that counting grace periods only would have called it a livelock.
    assert result.steps > 2 * BOUND


def test_a_remover_stuck_behind_a_leaked_read_side_is_a_livelock() -> None:
    result = sched.run_program(_rwlock_run(leak=True), sched.RandomStrategy(1),
                               max_steps=200_000, livelock_steps=BOUND)
    assert result.outcome is sched.Outcome.LIVELOCK, result.describe()
    assert "no progress in 1500 steps" in result.report
    assert "waits for down_write pgdat_rwsem" in result.report


@pytest.mark.parametrize("strategy", ["random", "pct"])
def test_the_rwlock_scenario_runs_clean_under_controlled_schedules(strategy: str) -> None:
    for seed in range(4):
        result = run_controlled(RunConfig(scheme="rwlock", sched=strategy, seed=seed,
                                          steps=1500))
        assert not result.violations, result.violations[0].report()
        assert result.system.remover.cycles > 0 or result.workers["remover"].loops > 0


def _leaky_iterator(ctx: Any, task: Task, stats: Any) -> None:
    """An iterator whose first section never ends (a missed read unlock). It passes
    plain points, not ``cond_resched()``: parking for a stop-machine inside the section
    would be a sleep-in-atomic, another bug than the one this variant is about."""
    scheme = ctx.system.scheme
    scheme.read_lock(task)
    while not ctx.should_stop():
        stats.loops += 1
        scheme.read_lock(task)
        ctx.system.NODE_DATA(0)
        scheme.read_unlock(task)
        sched.point("leaky:loop")


def test_a_livelock_report_names_the_progress_it_expected(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(workers.WORKER_KINDS, "iterator", _leaky_iterator)
    monkeypatch.setattr(controlled, "livelock_bound", lambda cfg: BOUND)
    result = run_controlled(RunConfig(scheme="rwlock", sched="random", seed=1, steps=20000))
    assert [v.kind for v in result.violations] == [Kind.LIVELOCK]
    assert result.violations[0].subject.endswith(
        "no progress within the livelock bound (expected: remover cycle, rwsem "
        "pgdat_rwsem: write section, node zonelist rebuilt)")


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["random", "pct"])
def test_the_rwlock_scenario_runs_clean_over_a_hundred_seeds(strategy: str) -> None:
    report = sweep_seeds(RunConfig(scheme="rwlock", sched=strategy), range(100))
    assert not report.failed, report.summary()


def _big_machine_cycle(nodes: int) -> sched.ProgramFactory:
    """A remover offlining and onlining node 1 once on a machine whose zonelist rebuild
    alone (nodes x nodes x zones schedule points) is longer than the livelock bound."""
    def make() -> sched.Program:
        config = SystemConfig(topology=Topology(nr_nodes=nodes, nr_cpus=nodes),
                              offline_timeout=100.0)
        system = System(config, QSBR(), SRCU("pgdat"))
        remover_task = system.new_task("remover", reader=False)

        def remover() -> None:
            remover_task.enter()
            system.remover.offline_node(1)
            system.remover.online_node(1)
            remover_task.exit()
        return sched.Program({"remover": remover})
    return make


class SilentRebuildRemover(Remover):
    """Broken: a rewritten zonelist is no sign of life (one long step per rebuild)."""

    def advance(self, label: str) -> None:
        self.steps += 1


@pytest.mark.parametrize(("remover_cls", "is_broken"), [
    (Remover, False), (SilentRebuildRemover, True)])
def test_a_large_machine_is_not_a_livelock(monkeypatch: pytest.MonkeyPatch,
                                          remover_cls: type[Remover], is_broken: bool) -> None:
    monkeypatch.setitem(REMOVERS, "corrected", remover_cls)
    nodes = 24
    assert nodes * nodes * len(ZONE_NAMES) > BOUND          # one rebuild outlasts the bound
    result = sched.run_program(_big_machine_cycle(nodes), sched.RandomStrategy(1),
                               max_steps=200_000, livelock_steps=BOUND)
    expected = sched.Outcome.LIVELOCK if is_broken else sched.Outcome.OK
    assert result.outcome is expected, result.describe()
