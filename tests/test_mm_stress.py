"""Runs of the whole model: correct configurations are clean, the RFC as posted is not.

Every broken variant of the model (``rcu_pgdat.mutants.mm``) is proven caught by the
catalogue's tests (``tests/test_mutants.py``), in controlled and free-running mode.
Counts here are step budgets of controlled runs (same seed, same run), never a rate
per wall-clock second, so a loaded machine cannot fail them.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from stress.run import RunConfig, StressResult, run

#: Threads for these runs: three policy users make vetoes and rebinds frequent.
THREADS: dict[str, Any] = dict(policy_users=3)


def _run(**kwargs: Any) -> StressResult:
    kwargs.setdefault("stall_timeout", 8.0)
    return run(RunConfig(**kwargs), status=None)


def _describe(result: StressResult) -> str:
    return "\n".join(v.format() for v in result.violations)


@pytest.mark.parametrize("scheme, zonelist, policy_mode, flavor", [
    ("rcu", "stop-machine", "veto", "qsbr"),
    ("rcu", "seqcount", "rebind", "memb"),
    ("rwlock", "stop-machine", "rebind", "qsbr"),
    ("reuse", "seqcount", "veto", "qsbr"),
])
def test_correct_configurations_run_clean(scheme: str, zonelist: str, policy_mode: str,
                                          flavor: str) -> None:
    result = _run(sched="random", steps=30000, seed=7, scheme=scheme, zonelist=zonelist,
                  policy_mode=policy_mode, flavor=flavor, **THREADS)
    assert result.ok, _describe(result)
    stats = result.system.stats
    assert stats.offlines >= 5 and stats.onlines >= 5
    assert stats.pgdats_released == stats.offlines
    assert sum(w.allocations for w in result.workers.values()) > 0


def test_the_rfc_as_posted_is_broken_and_the_corrected_remover_is_clean() -> None:
    posted = _run(sched="random", seed=1, remover="posted")
    assert [str(v.kind) for v in posted.violations] == ["use-after-free"]
    assert posted.violations[0].thread.startswith("sleeper-"), _describe(posted)
    corrected = _run(sched="random", seed=1, remover="corrected")
    assert corrected.ok, _describe(corrected)
    # Posted is only wrong for sleepable readers: without them it is clean too.
    no_sleepers = _run(sched="random", seed=1, remover="posted", sleepers=0)
    assert no_sleepers.ok, _describe(no_sleepers)


def test_a_mutant_needs_its_scheme_and_a_known_name() -> None:
    with pytest.raises(ValueError, match="needs --scheme rwlock"):
        RunConfig(inject=("rwlock-no-write-lock",)).validate()
    with pytest.raises(ValueError, match="unknown mutant"):
        RunConfig(inject=("nope",)).validate()
    with pytest.raises(ValueError, match="leave --remover at corrected"):
        RunConfig(inject=("free-before-gp",), remover="posted").validate()


@pytest.mark.slow
def test_many_offline_online_cycles_with_every_reader_under_every_scheme() -> None:
    """Every scheme, zonelist mode, policy mode and flavor, all reader kinds."""
    configs = list(itertools.product(("rcu", "rwlock", "reuse"), ("stop-machine", "seqcount"),
                                     ("veto", "rebind"), ("qsbr", "memb")))
    cycles = 0
    for seed, (scheme, zonelist, policy_mode, flavor) in enumerate(configs, start=100):
        result = _run(sched="random", seed=seed, scheme=scheme, zonelist=zonelist,
                      policy_mode=policy_mode, flavor=flavor, allocators=2, iterators=2,
                      sleepers=2, policy_users=2, fake_writers=1)
        assert result.ok, f"{scheme}/{zonelist}/{policy_mode}/{flavor}:\n{_describe(result)}"
        assert result.system.stats.offlines >= 5
        cycles += result.system.stats.offlines
    assert cycles >= 24 * 5


def test_the_stall_limit_follows_the_number_of_threads() -> None:
    assert RunConfig().stall_limit() == 10.0                     # 8 threads
    big = RunConfig(nodes=64, cpus=64, allocators=64, iterators=64, sleepers=64,
                    policy_users=48, fake_writers=15)
    assert len(big.thread_plan()) == 256 and big.stall_limit() == 80.0
    assert RunConfig(stall_timeout=2.5).stall_limit() == 2.5
