"""Held-out bugs: broken RCU plug-ins nobody showed the harness, judged by its defaults.

``tests/plugins/heldout_plain_rcu.py`` (plain ``threading``, no rcu_pgdat import) and
``tests/plugins/heldout_rcu.py`` (``sched.point``/``yield_point``/``Mutex``, as the
README tells a plug-in author) hold six broken RCUs, each a kind of bug that reached
real RCU code and none of them a catalogue mutant or an ``unseen_rcu`` plug-in, and
the correct RCU each one breaks. They were written, and what each may cause fixed in
``BROKEN``, before anything was measured; the measured seeds below were recorded once
and the plug-ins never edited after. Each runs as ``--flavor MODULE:ATTR`` with the
default configuration and the default sweep strategy (the portfolio).

Controlled runs are deterministic: the fast tests run each recorded first failing seed
and check the violation; the ``slow`` selection re-runs the whole sweep of
1..SEED_BUDGET and the free-running catches. What the defaults miss is listed in
``DEFAULTS_MISS`` (strict: closing the gap fails here until the entry goes).

To re-measure (``tests/plugins`` on ``PYTHONPATH``), per plug-in, the default sweep
(a minute or two) and free-running runs::

    rcu-pgdat-stress --flavor heldout_rcu:UnlockNowIdxRCU --seeds 1-20
    rcu-pgdat-stress --flavor heldout_rcu:UnlockNowIdxRCU --sched stress --duration 5 --seed 1

every strategy side by side (the detection section also runs the whole mutant
catalogue, and counts any violation of a plug-in as a catch)::

    rcu-pgdat-stress bench --only detection --plugins heldout_plain_rcu:CopyOutsideLockRCU,\
heldout_plain_rcu:BarrierSeesQueueRCU,heldout_plain_rcu:LockFreeReadRCU,\
heldout_rcu:UnlockNowIdxRCU,heldout_rcu:SharedNestingRCU,heldout_rcu:StaleQSReportQSBR

or this file's slow selection: ``python -m pytest -m slow tests/test_heldout_plugins.py``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rcu_pgdat.check import Kind
from rcu_pgdat.sched import SWEEP_DEFAULT
from stress.run import RunConfig, StressResult, run

PLUGINS = Path(__file__).resolve().parent / "plugins"
SEED_BUDGET = 20
FREE_BUDGET = 5            # free-running runs of FREE_SECONDS each
FREE_SECONDS = 5.0
#: Time limits of the slow tests that run a whole budget: 20 controlled runs, or 5
#: free-running ones (a stall is reported after 10 s), on a loaded machine.
SWEEP_TIMEOUT = 900
FREE_TIMEOUT = 300

#: A grace period that ended too early.
EARLY = frozenset({Kind.GP_TOO_SHORT, Kind.USE_AFTER_FREE, Kind.STALE_GENERATION})
#: A grace period that never ends (a counter or number that never drains).
NEVER_ENDS = frozenset({Kind.STALL, Kind.DEADLOCK, Kind.LIVELOCK})
#: Broken plug-in -> (the correct one it breaks, what it may cause), fixed from the
#: bug alone before any run.
BROKEN: dict[str, tuple[str, frozenset[Kind]]] = {
    "heldout_plain_rcu:CopyOutsideLockRCU": ("heldout_plain_rcu:PlainRegistryRCU", EARLY),
    "heldout_plain_rcu:BarrierSeesQueueRCU": ("heldout_plain_rcu:PlainCallbackRCU", EARLY),
    "heldout_plain_rcu:LockFreeReadRCU": ("heldout_plain_rcu:PlainFlipRCU",
                                          EARLY | NEVER_ENDS),
    "heldout_rcu:UnlockNowIdxRCU": ("heldout_rcu:FlipRCU", EARLY | NEVER_ENDS),
    "heldout_rcu:SharedNestingRCU": ("heldout_rcu:NestRCU", EARLY | NEVER_ENDS),
    "heldout_rcu:StaleQSReportQSBR": ("heldout_rcu:MaskQSBR", EARLY),
}
CORRECT = sorted({twin for twin, _ in BROKEN.values()})

#: Broken plug-in -> the first seed of 1..SEED_BUDGET whose default sweep run catches it
#: (measured once with ``test_the_default_sweep_catches_each_within_the_budget``; failing
#: seeds of 20 in the comment).
FIRST_FAILING: dict[str, int] = {
    "heldout_plain_rcu:CopyOutsideLockRCU": 2,     # 9/20, gp-too-short
    "heldout_plain_rcu:BarrierSeesQueueRCU": 1,    # 6/20, gp-too-short (the barrier)
    "heldout_rcu:UnlockNowIdxRCU": 1,              # 20/20, stall or livelock
    "heldout_rcu:SharedNestingRCU": 1,             # 20/20: gp-too-short in 7, stall, livelock
    # Missed by the defaults when first measured: its race lies between two plain
    # accesses (a load of the index or the counter and the store of the counter), where
    # interception puts no schedule point. Caught since a plug-in in plain threading is
    # instrumented by default, a change this miss prompted (so for that change it is no
    # longer held out): a lost count, the grace period waits for good.
    "heldout_plain_rcu:LockFreeReadRCU": 1,        # deadlock
}
#: Broken plug-ins the default sweep misses within SEED_BUDGET: gaps of the defaults.
#: ``StaleQSReportQSBR`` never ended a grace period early within 20 seeds; three
#: seeds (5, 8, 18) ended in a stall or livelock instead (a stale store revived the bit
#: of a reader that had gone offline or left), which ``BROKEN`` did not list for it
#: before the measurement and so does not count.
DEFAULTS_MISS: set[str] = {"heldout_rcu:StaleQSReportQSBR"}
#: Broken plug-ins free-running stress missed in FREE_BUDGET runs when measured (3.11,
#: GIL). The others were caught in 5 of 5 runs: the barrier as gp-too-short, the
#: index and nesting bugs as a stall. A reader registry is written once per thread, at
#: its start, so a lost registration needs two starts to overlap at one bytecode.
FREE_MISS: set[str] = {"heldout_plain_rcu:CopyOutsideLockRCU",
                       "heldout_plain_rcu:LockFreeReadRCU",
                       "heldout_rcu:StaleQSReportQSBR"}


@pytest.fixture(autouse=True)
def _plugins_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))


def _sweep(spec: str, seed: int) -> StressResult:
    return run(RunConfig(flavor=spec, sched=SWEEP_DEFAULT, seed=seed), status=None)


def _free(spec: str, seed: int, seconds: float) -> Kind | None:
    """The first violation of a free-running run, in a process of its own: a broken
    plug-in whose grace period never ends leaves its waiters spinning in their
    ``yield_point`` loops after the stall is reported (free-running threads cannot be
    stopped), and they would slow every later run of this process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(PLUGINS), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run(
        [sys.executable, "-m", "stress", "--flavor", spec, "--sched", "stress",
         "--duration", str(seconds), "--seed", str(seed), "--quiet", "--json", "-"],
        capture_output=True, text=True, env=env, cwd=PLUGINS.parent.parent, check=False,
        timeout=FREE_TIMEOUT)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    violations = json.loads(proc.stdout)["violations"]
    return Kind(violations[0]["kind"]) if violations else None


def _caught(spec: str, result: StressResult) -> bool:
    return bool(result.violations) and result.violations[0].kind in BROKEN[spec][1]


def _first_failing(spec: str) -> int | None:
    return next((seed for seed in range(1, SEED_BUDGET + 1)
                 if _caught(spec, _sweep(spec, seed))), None)


def test_the_held_out_set_is_disjoint_plain_and_annotated() -> None:
    assert len(BROKEN) >= 5
    plain = [spec for spec in BROKEN if spec.startswith("heldout_plain_rcu:")]
    assert len(plain) >= 2
    assert not set(FIRST_FAILING) & DEFAULTS_MISS
    assert set(FIRST_FAILING) | DEFAULTS_MISS == set(BROKEN)
    tree = ast.parse((PLUGINS / "heldout_plain_rcu.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "threading", "typing"}, imported


#: A plain plug-in is instrumented, by ``sys.monitoring`` on 3.12+ and ``settrace``
#: before (``rcu_pgdat/sched/instrument.py``); the two put points at different places,
#: so such a plug-in's seeds differ between them. ``FIRST_FAILING`` was measured under
#: ``settrace`` (3.11); these under ``sys.monitoring`` (3.13.0 and 3.13.5t, seeds 1..8:
#: caught at 5 and 7), where they differ.
FIRST_FAILING_MONITORING: dict[str, int] = {
    "heldout_plain_rcu:CopyOutsideLockRCU": 5,
}


def recorded_seed(spec: str) -> int:
    """The recorded first failing seed of ``spec`` under this interpreter's instrumentation."""
    if sys.version_info >= (3, 12) and spec in FIRST_FAILING_MONITORING:
        return FIRST_FAILING_MONITORING[spec]
    return FIRST_FAILING[spec]


@pytest.mark.parametrize("spec", sorted(FIRST_FAILING))
def test_the_default_sweep_catches_each_at_its_recorded_seed(spec: str) -> None:
    seed = recorded_seed(spec)
    assert seed <= SEED_BUDGET
    result = _sweep(spec, seed)
    assert _caught(spec, result), (spec, seed, [v.kind for v in result.violations])


@pytest.mark.slow
@pytest.mark.timeout(SWEEP_TIMEOUT)
@pytest.mark.parametrize("spec", sorted(FIRST_FAILING))
def test_the_default_sweep_catches_each_within_the_budget(spec: str) -> None:
    assert _first_failing(spec) == recorded_seed(spec)


@pytest.mark.slow
@pytest.mark.timeout(SWEEP_TIMEOUT)
@pytest.mark.parametrize("spec", sorted(DEFAULTS_MISS))
@pytest.mark.xfail(strict=True, reason="the default sweep misses it: harness work pending")
def test_the_default_sweep_misses_these(spec: str) -> None:
    assert _first_failing(spec) is not None


def _free_params() -> list[object]:
    return [pytest.param(spec, marks=pytest.mark.xfail(
                strict=False, reason="free-running missed it when measured (not deterministic)"))
            if spec in FREE_MISS else spec for spec in sorted(BROKEN)]


@pytest.mark.slow
@pytest.mark.timeout(FREE_TIMEOUT)
@pytest.mark.parametrize("spec", _free_params())
def test_free_running_stress_catches_each(spec: str) -> None:
    seen = []
    for seed in range(1, FREE_BUDGET + 1):
        kind = _free(spec, seed, FREE_SECONDS)
        seen.append(kind)
        if kind in BROKEN[spec][1]:
            return
    pytest.fail(f"{spec} survived {FREE_BUDGET} free-running runs: {seen}")


#: The correct RCUs run clean at one seed of each family of the rotation (pct d=3,
#: delay, pos). Over seeds 1..20 they ran clean when measured, but for two reports
#: that were the harness's: ``NestRCU`` at every pos seed (a livelock: two grace
#: periods' wait loops lifted each other over the reader they waited for, as with
#: ``unseen_rcu:TicketRCU``; fixed in pos since), and one wall-clock stall of
#: ``PlainCallbackRCU`` (seed 4) under a load average near 40 that did not recur.
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("spec", CORRECT)
def test_the_correct_rcus_they_break_run_clean(spec: str, seed: int) -> None:
    result = _sweep(spec, seed)
    assert result.ok, result.violations[0].format()


@pytest.mark.parametrize("spec", CORRECT)
def test_the_correct_rcus_run_clean_free_running(spec: str) -> None:
    assert _free(spec, 1, 1.0) is None

