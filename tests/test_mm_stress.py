"""Free-running runs of the whole model: correct configurations are clean, every broken
variant of ``rcu_pgdat.mm._broken`` is caught by the check it targets, within budget.

A broken variant gets up to ``SEEDS`` short runs and must be caught in one of them (in
practice the first: see the measured figures in the report of issue 5); a correct
configuration must show no violation at all.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from rcu_pgdat.mm._broken import MUTANTS, BrokenVariant
from stress.run import RunConfig, RunResult, run

#: Runs a broken variant gets, and how long each may take (seconds).
SEEDS = 5
MUTANT_DURATION = 2.0
#: Threads for the catalogue runs: three policy users make vetoes and rebinds frequent.
MUTANT_THREADS: dict[str, Any] = dict(policy_users=3)


def _run(**kwargs: Any) -> RunResult:
    kwargs.setdefault("stall_timeout", 8.0)
    return run(RunConfig(**kwargs), status=None)


def _describe(result: RunResult) -> str:
    return "\n".join(v.format() for v in result.violations)


def _catch(variant: BrokenVariant) -> list[tuple[int, str, str]]:
    """Run ``variant`` under seeds 1..SEEDS until a run reports; ``(seed, kind, subject)``."""
    seen = []
    for seed in range(1, SEEDS + 1):
        result = _run(duration=MUTANT_DURATION, seed=seed, scheme=variant.scheme,
                      inject=(variant.name,), **MUTANT_THREADS)
        if result.violations:
            first = result.violations[0]
            seen.append((seed, str(first.kind), first.subject))
            if variant.caught_by(first.kind, first.subject):
                return seen
    return seen


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_every_broken_variant_is_caught_by_its_check(name: str) -> None:
    variant = MUTANTS[name]
    seen = _catch(variant)
    assert seen, f"{name} ({variant.bug}) ran {SEEDS} seeds without a violation"
    seed, kind, subject = seen[-1]
    assert variant.caught_by(kind, subject), (
        f"{name} must cause {'/'.join(variant.kinds)} {variant.subject!r}; got {seen}")


@pytest.mark.parametrize("scheme, zonelist, policy_mode, flavor", [
    ("rcu", "stop-machine", "veto", "qsbr"),
    ("rcu", "seqcount", "rebind", "memb"),
    ("rwlock", "stop-machine", "rebind", "qsbr"),
    ("reuse", "seqcount", "veto", "qsbr"),
])
def test_correct_configurations_run_clean(scheme: str, zonelist: str, policy_mode: str,
                                          flavor: str) -> None:
    result = _run(duration=1.0, seed=7, scheme=scheme, zonelist=zonelist,
                  policy_mode=policy_mode, flavor=flavor, **MUTANT_THREADS)
    assert result.ok, _describe(result)
    stats = result.system.stats
    assert stats.offlines >= 5 and stats.onlines >= 5
    assert stats.pgdats_released == stats.offlines
    assert sum(w.allocations for w in result.workers.values()) > 0


def test_the_rfc_as_posted_is_broken_and_the_corrected_remover_is_clean() -> None:
    posted = _run(duration=MUTANT_DURATION, seed=1, remover="posted")
    assert [str(v.kind) for v in posted.violations] == ["use-after-free"]
    assert posted.violations[0].thread.startswith("sleeper-"), _describe(posted)
    corrected = _run(duration=1.0, seed=1, remover="corrected")
    assert corrected.ok, _describe(corrected)
    # Posted is only wrong for sleepable readers: without them it is clean too.
    no_sleepers = _run(duration=1.0, seed=1, remover="posted", sleepers=0)
    assert no_sleepers.ok, _describe(no_sleepers)


def test_a_mutant_needs_its_scheme_and_a_known_name() -> None:
    with pytest.raises(ValueError, match="needs --scheme rwlock"):
        RunConfig(inject=("rwlock-no-write-lock",)).validate()
    with pytest.raises(ValueError, match="unknown mutant"):
        RunConfig(inject=("nope",)).validate()
    with pytest.raises(ValueError, match="leave --remover at corrected"):
        RunConfig(inject=("free-before-gp",), remover="posted").validate()


def test_the_catalogue_documents_each_variant() -> None:
    for name, variant in MUTANTS.items():
        assert variant.name == name and variant.bug and variant.kinds
        assert variant.system_kwargs(), name
        if "bug" in variant.kinds:          # which model check fires, not just "a bug"
            assert variant.subject, name
            assert not variant.caught_by("bug", "in something else entirely")
        assert variant.caught_by(variant.kinds[0], f"... {variant.subject} ...")
        assert not variant.caught_by("section-leak", variant.subject)


@pytest.mark.slow
def test_many_offline_online_cycles_with_every_reader_under_every_scheme() -> None:
    """~30 s: every scheme, zonelist mode, policy mode and flavor, all reader kinds."""
    configs = list(itertools.product(("rcu", "rwlock", "reuse"), ("stop-machine", "seqcount"),
                                     ("veto", "rebind"), ("qsbr", "memb")))
    cycles = 0
    for seed, (scheme, zonelist, policy_mode, flavor) in enumerate(configs, start=100):
        result = _run(duration=1.2, seed=seed, scheme=scheme, zonelist=zonelist,
                      policy_mode=policy_mode, flavor=flavor, allocators=2, iterators=2,
                      sleepers=2, policy_users=2, fake_writers=1)
        assert result.ok, f"{scheme}/{zonelist}/{policy_mode}/{flavor}:\n{_describe(result)}"
        assert result.system.stats.offlines >= 5
        cycles += result.system.stats.offlines
    assert cycles >= 24 * 5
