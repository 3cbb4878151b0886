"""The end of a free-running run: threads still winding down are a stall only when they
stop progressing (a remover finishing a zonelist rebuild of a 1024-node machine takes
longer than the stall limit, and is no stall), and the run always ends.

The clock is a fake one that advances a second at every look, and the threads are
stand-ins that live for a number of polls: nothing here depends on the machine's speed.
"""

from __future__ import annotations

import time
from typing import Callable

import pytest

from rcu_pgdat import sched
from rcu_pgdat.check import Kind
from stress import free
from stress.build import build
from stress.config import RunConfig
from stress.scenarios import SCENARIOS

CFG = RunConfig(**SCENARIOS["TINY"][1], stall_timeout=10.0)


class FakeClock:
    """``time.monotonic`` that moves a second forward at every call."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


class Winding:
    """A thread that is alive for ``polls`` joins, doing ``step()`` at each."""

    def __init__(self, polls: int, step: Callable[[], None]) -> None:
        self.name = "remover"
        self.polls = polls
        self.step = step

    def is_alive(self) -> bool:
        return self.polls > 0

    def join(self, timeout: float | None = None) -> None:
        self.polls -= 1
        self.step()


def fixed_timeout_join(system: object, threads: list[Winding],
                       watchdog: free._Watchdog) -> list[str]:
    """Broken: the wind-down gets the stall limit in all, progress or not."""
    deadline = time.monotonic() + watchdog.timeout
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        next(t for t in threads if t.is_alive()).join(0.05)
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        free.report_stall(system, "of remover", "did not stop")   # type: ignore[arg-type]
    return stuck


def _wind_down(monkeypatch: pytest.MonkeyPatch, polls: int, progressing: bool,
               join: Callable[..., list[str]] = free._join) -> tuple[list[str], list[str]]:
    """The stuck threads and the violation texts of one wind-down."""
    system = build(CFG).system
    monkeypatch.setattr(free.time, "monotonic", FakeClock())

    def step() -> None:
        if progressing:
            system.remover.advance("node zonelist rebuilt")
    watchdog = free._Watchdog(system, sched.Scheduler(), CFG)
    stuck = join(system, [Winding(polls, step)], watchdog)
    assert all(v.kind is Kind.STALL for v in system.collector.violations)
    return stuck, [v.format() for v in system.collector.violations]


@pytest.mark.parametrize(("join", "is_broken"), [(free._join, False),
                                                  (fixed_timeout_join, True)])
def test_a_long_wind_down_that_progresses_is_no_stall(
        monkeypatch: pytest.MonkeyPatch, join: Callable[..., list[str]],
        is_broken: bool) -> None:
    polls = 30                       # each poll looks at the clock: > 3 stall limits
    stuck, reports = _wind_down(monkeypatch, polls, progressing=True, join=join)
    assert bool(stuck) == is_broken and bool(reports) == is_broken, reports


def test_a_wind_down_without_progress_is_a_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    stuck, reports = _wind_down(monkeypatch, polls=10**6, progressing=False)
    assert stuck == ["remover"]
    assert "did not stop and made no progress for 10.0s after the end of the run" in reports[0]


def test_a_wind_down_that_progresses_for_ever_still_ends(
        monkeypatch: pytest.MonkeyPatch) -> None:
    stuck, reports = _wind_down(monkeypatch, polls=10**6, progressing=True)
    assert stuck == ["remover"]
    assert (f"did not stop within {free.WIND_DOWN_LIMITS * 10.0:.1f}s of the end of the "
            "run, although it kept progressing") in reports[0]
