"""The pytest plugin: users' torture tests pass on correct flavors, fail on broken ones
with the sanitizer report and a reproduce line that reproduces; sweeps spread over
xdist; a stall under pytest-timeout fails with the hang report, not a silent kill.

Two kinds of test. Direct ones build an :class:`RCUHarness` in this process and catch
the ``pytest.fail`` it raises. Integration ones run pytest on a generated test file
(pytester): inline where the run leaves nothing behind, in a subprocess where it does
(xdist workers, a thread blocked forever, pytest-timeout's signal). The generated files
import the torture program from this module, so both kinds run the same program.

The plugin is loaded with ``-p no:rcu_pgdat -p rcu_pgdat.pytest_plugin``: that works
whether or not the package's ``pytest11`` entry point is installed (``-p`` by module
name alone would register the module twice when it is).
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rcu_pgdat import sched
from rcu_pgdat.check import Tracked
from rcu_pgdat.errors import UsageError
from rcu_pgdat.pytest_plugin import (DEFAULT_HANG_TIMEOUT, RCUHarness, _span,
                                     hang_timeout_for, parse_seeds)
from rcu_pgdat.rcu import QSBR, Memb
from rcu_pgdat.harness import CheckedSRCU
from rcu_pgdat.rcu.srcu import SRCU

pytest_plugins = ["pytester"]

PLUGIN = ("-p", "no:rcu_pgdat", "-p", "rcu_pgdat.pytest_plugin")
TESTS_DIR = Path(__file__).resolve().parent

Setup = Callable[[RCUHarness], Any]


# -- the torture program (also imported by the generated test files) -----------------------


class Box(Tracked):
    """An RCU-protected object: readers reach it through ``slot[0]``."""

    value: int


class NoWaitQSBR(QSBR):
    """Broken: ``synchronize()`` returns without waiting for any reader."""

    def _wait_for_readers(self) -> None:
        pass


FLAVORS: dict[str, Callable[[], Any]] = {
    "qsbr": QSBR, "memb": Memb, "srcu": lambda: SRCU("torture"), "qsbr-no-wait": NoWaitQSBR}


def torture(flavor: str, *, readers: int = 2, reads: int = 3, updates: int = 3,
            loop: bool = False) -> Setup:
    """Readers dereference the published Box inside sections; the updater publishes a
    new one, retires the old, waits a grace period and frees it. Readers make ``reads``
    passes, or loop until ``h.stopping()``. The final check proves the run did work."""
    def setup(h: RCUHarness) -> None:
        rcu = h.checked(FLAVORS[flavor]())
        srcu = isinstance(rcu, CheckedSRCU)
        slot = [h.alloc.alloc(Box, "box", value=0)]
        seen: list[int] = []

        def one_read() -> None:
            idx = rcu.read_lock()
            sched.point("reader:load")               # a grace period may start here
            box = h.oracles.deref(slot[0], rcu.key)
            sched.point("reader:use")                # ... and end here, if broken
            seen.append(box.value)                   # checked: poisoned once freed
            if srcu:
                rcu.read_unlock(idx)
            else:
                rcu.read_unlock()
                rcu.quiescent_state()

        def reader() -> None:
            if not srcu:
                rcu.register_thread()
            passes = 0
            while (not h.stopping()) if loop else passes < reads:
                one_read()
                passes += 1
                sched.yield_point("reader:next")
            if not srcu:
                rcu.unregister_thread()

        for i in range(readers):
            h.spawn(f"reader-{i}", reader)

        @h.thread("updater")
        def updater() -> None:
            for value in range(1, updates + 1):
                old = slot[0]
                sched.point("updater:publish")
                slot[0] = h.alloc.alloc(Box, "box", value=value)
                h.oracles.retire(old, rcu.key)
                rcu.synchronize()
                h.alloc.free(old)

        @h.check
        def did_work() -> None:
            assert h.alloc.freed == updates, h.alloc
            assert seen and all(0 <= v <= updates for v in seen), seen
    return setup


def fails(harness: RCUHarness, setup: Setup) -> str:
    """Run ``setup`` and return the failure text ``run()`` must fail with."""
    with pytest.raises(pytest.fail.Exception) as info:
        harness.run(setup)
    return str(info.value)


def harness(mode: str = "random", seeds: Any = "0-9", steps: int = 300) -> RCUHarness:
    return RCUHarness(mode=mode, seeds=seeds, steps=steps, reproduce="pytest 'x.py::t'")


def failing_seeds(setup: Setup, mode: str, seeds: range, steps: int) -> list[int]:
    """The seeds of ``seeds`` on which ``setup`` fails, each run on its own."""
    found = []
    for seed in seeds:
        try:
            harness(mode, [seed], steps).run(setup)
        except pytest.fail.Exception:
            found.append(seed)
    return found


# -- direct: verdicts -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["random", "pct", "stress"])
@pytest.mark.parametrize("flavor", ["qsbr", "memb", "srcu"])
def test_correct_flavor_passes_every_seed(mode: str, flavor: str) -> None:
    h = harness(mode)
    results = h.run(torture(flavor, loop=True))
    assert len(results) == 10 and not any(r.failed for r in results)
    assert h.alloc.freed == 3 and h.collector.ok
    if mode != "stress":            # readers ran until the budget, then wound down
        assert all(300 <= r.steps <= 1300 for r in results), [r.steps for r in results]
        assert all("rcu-teardown" in r.trace.threads for r in results if r.trace)


#: The broken flavor fails on some of seeds 0-9 under random and pct (3 in both).
BROKEN = torture("qsbr-no-wait", reads=2)


@pytest.mark.parametrize("mode", ["random", "pct", "stress"])
def test_broken_flavor_fails_with_the_report_and_reproduce_line(mode: str) -> None:
    if mode == "stress":        # the OS decides too: long runs, more updates, more seeds
        # (without a GIL, three updates finish in under a millisecond, before a busy
        # machine has run the readers at all: 0 of 40 seeds caught, 25 of 40 with 30)
        text = fails(harness(mode, "0-19", 500),
                     torture("qsbr-no-wait", loop=True, updates=30))
    else:                       # catches with p ~ 1/2; 20 misses ~ 1e-6)
        text = fails(harness(mode, "0-9", 500), BROKEN)
    head, *_ = text.splitlines()
    seed = re.match(rf"rcu_harness: seed (\d+) failed under --rcu-sched {mode} ", head)
    assert seed is not None, head
    assert "=" * 66 in text and "Reader Pipe (rcu:qsbr)" in text
    if mode == "stress" and "BUG: pipeline in rcu:qsbr" in head:
        # Free-running, the OS may let a reader see the box a full grace period after
        # it was retired before any grace period ends under an open section: the same
        # bug, reported by the pipeline check first.
        assert "grace period(s) after it was retired" in head
    else:
        assert "BUG: gp-too-short in rcu:qsbr" in head
        assert "Grace period of rcu:qsbr ended (gp_end) by thread updater" in text
    if mode == "stress":
        assert "stress mode: the threads ran free" in text
    else:
        assert re.search(r"step +\|.* reader-\d .*\| updater", text), text
    assert text.splitlines()[-1] == (f"reproduce: pytest 'x.py::t' --rcu-sched {mode} "
                                     f"--rcu-seeds {seed[1]}-{seed[1]} --rcu-steps 500")


@pytest.mark.parametrize("mode", ["random", "pct"])
def test_a_seed_is_a_replay(mode: str) -> None:
    """Same seed, same run: the whole failure text, table included, twice."""
    first = fails(harness(mode, "0-9", 500), BROKEN)
    seed = int(first.split()[2])
    again = fails(harness(mode, [seed], 500), BROKEN)
    assert first.split("\n", 1)[1] == again.split("\n", 1)[1]


def test_thread_exception_fails_in_every_mode() -> None:
    def setup(h: RCUHarness) -> None:
        @h.thread("worker")
        def worker() -> None:
            sched.point("worker:start")
            raise ValueError("boom in the worker")
    for mode in ("random", "stress"):
        text = fails(harness(mode), setup)
        assert "BUG: thread-exception in worker: ValueError: boom in the worker" in text
        assert "raise ValueError" not in text and "#0 worker " in text   # a trimmed stack
        assert f"--rcu-sched {mode} --rcu-seeds 0-0" in text


def test_exception_in_a_callback_thread_is_routed_to_the_run() -> None:
    """A call_rcu callback raises in the flavor's worker: threading.excepthook is the
    run's collector, so the test fails instead of pytest printing a warning."""
    def setup(h: RCUHarness) -> None:
        rcu = h.checked(QSBR())

        def bad() -> None:
            raise KeyError("callback")
        h.spawn("queuer", lambda: rcu.call_rcu(bad))
    text = fails(harness(seeds="0-0"), setup)
    assert "BUG: thread-exception in qsbr-callbacks: KeyError: 'callback'" in text


def test_final_check_failure_fails_the_run() -> None:
    def setup(h: RCUHarness) -> None:
        h.spawn("a", lambda: sched.point("a"))

        @h.check
        def final() -> None:
            raise AssertionError("final state is wrong")
    text = fails(harness(seeds="3-3"), setup)
    assert "BUG: thread-exception in check: AssertionError: final state is wrong" in text


@pytest.mark.parametrize("blocks_inside", [False, True], ids=["outside", "inside"])
def test_sleep_in_a_non_sleepable_section_is_caught(blocks_inside: bool) -> None:
    """The run's oracles are the might-sleep hook: a wait inside a Memb section fails."""
    def setup(h: RCUHarness) -> None:
        rcu = h.checked(Memb())
        go = sched.Event("go")

        @h.thread("waiter")
        def waiter() -> None:
            rcu.read_lock()
            if blocks_inside:
                go.wait()
            rcu.read_unlock()
            go.wait()
        h.spawn("setter", go.set)
    if blocks_inside:
        text = fails(harness(seeds="0-0"), setup)
        assert "BUG: sleep-in-atomic in waiter: wait for event go inside rcu:memb" in text
    else:
        assert len(harness().run(setup)) == 10


def test_section_left_open_is_a_leak() -> None:
    def setup(h: RCUHarness) -> None:
        rcu = h.checked(Memb())
        h.spawn("leaker", rcu.read_lock)
    assert "BUG: section-leak in leaker: read-side section rcu:memb left open" in fails(
        harness(), setup)


def lock_order(inverted: bool) -> Setup:
    def setup(h: RCUHarness) -> None:
        m1, m2 = sched.Mutex("m1"), sched.Mutex("m2")

        def taker(first: sched.Mutex, second: sched.Mutex) -> Callable[[], None]:
            def body() -> None:
                with first:
                    sched.point("between")
                    with second:
                        sched.point("inside")
            return body
        h.spawn("a", taker(m1, m2))
        h.spawn("b", taker(m2, m1) if inverted else taker(m1, m2))
    return setup


@pytest.mark.parametrize("inverted", [False, True])
def test_deadlock_is_reported_with_each_threads_wait(inverted: bool) -> None:
    h = harness(seeds="0-19")
    if not inverted:
        assert len(h.run(lock_order(False))) == 20
        return
    text = fails(h, lock_order(True))
    assert "BUG: deadlock of the run: every live thread is blocked" in text
    assert "a: waits for lock m2" in text and "b: waits for lock m1" in text


def test_a_thread_that_never_stops_exhausts_the_budget() -> None:
    def setup(h: RCUHarness) -> None:
        @h.thread("spinner")
        def spinner() -> None:
            while True:
                sched.yield_point("spin")
    text = fails(harness(seeds="0-0", steps=200), setup)
    assert "BUG: stall of the run: the run did not finish within its step budget" in text
    assert "The scheduler allows 1200 steps" in text and "h.stopping()" in text


@pytest.mark.parametrize("checked", [True, False], ids=["checked", "raw-flavor"])
def test_teardown_shuts_wrapped_flavors_down_inside_the_schedule(checked: bool) -> None:
    """Callback workers are model threads; only the teardown thread ends them. A flavor
    the harness does not know about keeps its worker waiting: the run deadlocks."""
    def setup(h: RCUHarness) -> None:
        rcu = h.checked(QSBR()) if checked else QSBR()
        domain = h.checked(SRCU("cb"))
        ran: list[str] = []

        @h.thread("queuer")
        def queuer() -> None:
            idx = domain.read_lock()
            domain.call_srcu(lambda: ran.append("srcu"))    # legal inside a section
            domain.read_unlock(idx)
            rcu.call_rcu(lambda: ran.append("rcu"))

        @h.check
        def both_ran() -> None:
            assert sorted(ran) == ["rcu", "srcu"], ran
    if checked:
        results = harness(seeds="0-4").run(setup)
        assert all(r.trace and r.trace.final["rcu-teardown"] == "finished" for r in results)
    else:
        text = fails(harness(seeds="0-0"), setup)
        assert "BUG: deadlock of the run" in text and "qsbr-callbacks: waits" in text


@pytest.mark.parametrize("mode", ["random", "stress"])
def test_stopping_follows_the_step_budget(mode: str) -> None:
    counts: dict[str, int] = {}

    def setup(h: RCUHarness) -> None:
        def spin(name: str) -> Callable[[], None]:
            def body() -> None:
                counts[name] = 0
                while not h.stopping():
                    counts[name] += 1
                    sched.yield_point("spin")
            return body
        for name in ("a", "b"):
            h.spawn(name, spin(name))
    harness(mode, "0-0", steps=400).run(setup)
    if mode == "stress":                   # each thread: its own 400 // 2 points
        assert counts == {"a": 200, "b": 200}
    else:                                  # all threads together: 400 steps
        assert sum(counts.values()) in (399, 400, 401) and min(counts.values()) > 0


# -- direct: misuse and hygiene ---------------------------------------------------------------


def test_misuse_raises_with_a_message_that_says_what_to_do() -> None:
    h = harness(seeds="0-0")
    with pytest.raises(UsageError, match="exists only inside run"):
        h.oracles  # noqa: B018
    with pytest.raises(UsageError, match="only inside run"):
        h.spawn("a", lambda: None)
    with pytest.raises(UsageError, match="registered no threads"):
        h.run(lambda h: None)
    with pytest.raises(UsageError, match="must return None or a"):
        h.run(cast(Setup, lambda h: ["not", "a", "mapping"]))
    with pytest.raises(UsageError, match="pass an instance, e.g. checked\\(QSBR\\(\\)\\)"):
        h.run(lambda h: h.checked(QSBR))

    def twice(h: RCUHarness) -> None:
        h.spawn("a", lambda: None)
        h.spawn("a", lambda: None)
    with pytest.raises(UsageError, match="'a' is already registered"):
        h.run(twice)
    with pytest.raises(UsageError, match="the harness's own"):
        h.run(lambda h: {"rcu-teardown": lambda: None})

    def spawns_late(h: RCUHarness) -> None:
        h.spawn("a", lambda: h.spawn("b", print))
    assert ("BUG: thread-exception in a: UsageError: rcu_harness.spawn() after setup "
            "returned") in fails(h, spawns_late)


def test_setup_returning_a_mapping_registers_its_threads_in_order() -> None:
    order: list[str] = []
    results = harness(seeds="5-5").run(
        lambda h: {name: functools.partial(order.append, name) for name in ("x", "y", "z")})
    assert results[0].trace is not None and results[0].trace.threads == ("x", "y", "z")
    assert sorted(order) == ["x", "y", "z"]


def test_every_hook_a_run_sets_is_restored() -> None:
    excepthook, active, interval = threading.excepthook, sched.active(), sys.getswitchinterval()
    might_sleep = sched.set_might_sleep_hook(None)
    sched.set_might_sleep_hook(might_sleep)
    harness("stress", "0-1").run(torture("memb"))
    fails(harness("random", "0-9", 500), BROKEN)
    assert threading.excepthook is excepthook and sched.active() is active
    assert sys.getswitchinterval() == interval
    assert sched.set_might_sleep_hook(might_sleep) is might_sleep


def test_parse_seeds_forms_and_errors() -> None:
    assert parse_seeds("3-5") == (3, 4, 5) and parse_seeds(" 7 ") == (7,)
    assert parse_seeds(range(1, 4)) == (1, 2, 3) and parse_seeds(9) == (9,)
    for bad, why in [("5-3", "0 <= A <= B"), ("a-b", "write A-B"), ([], "no seeds"),
                     ([1, "2"], "must be ints"), (True, "must be ints"), (1.5, "iterable")]:
        with pytest.raises(UsageError, match=why):
            parse_seeds(bad)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 50))
def test_seed_spans_round_trip(first: int, extra: int) -> None:
    seeds = tuple(range(first, first + extra + 1))
    assert parse_seeds(f"{first}-{first + extra}") == seeds
    assert parse_seeds(_span(seeds)) == seeds


# -- integration: pytest runs a user's torture test file ---------------------------------------


USER_TESTS = """
import pytest
from test_pytest_plugin import torture


@pytest.mark.parametrize("flavor", ["qsbr", "memb", "srcu"])
def test_correct(rcu_harness, flavor):
    assert len(rcu_harness.run(torture(flavor, loop=True))) == len(rcu_harness.seeds)


def test_broken(rcu_harness):
    rcu_harness.run(torture("qsbr-no-wait", reads=2))
"""


@pytest.fixture(name="user")
def user_fixture(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose runs (inline or subprocess) can import this module.

    Inside an xdist worker the inner sessions would see ``PYTEST_XDIST_WORKER`` and
    take themselves for workers too (pytest-benchmark then warns): unset it for them.
    """
    pytester.syspathinsert(TESTS_DIR)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(TESTS_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]))
    return pytester


def report_of(output: str) -> str:
    """The failure text from the first rule up to the reproduce line: the violation
    and the interleaving, which a run of the same seed must print again."""
    start = output.index("=" * 66)
    return output[start:output.index("reproduce: ", start)]


@pytest.mark.parametrize("mode", ["random", "pct"])
def test_pytest_run_fails_the_broken_test_and_its_reproduce_line_fails_again(
        user: pytest.Pytester, mode: str) -> None:
    user.makepyfile(test_user=USER_TESTS)
    result = user.runpytest(*PLUGIN, "--rcu-sched", mode, "--rcu-steps", "300")
    result.assert_outcomes(passed=3, failed=1)
    out = result.stdout.str()
    assert "rcu-pgdat: --rcu-sched " + mode in out            # settings echoed
    result.stdout.fnmatch_lines([
        f"rcu_harness: seed * failed under --rcu-sched {mode} *BUG: gp-too-short in rcu:qsbr*"])
    seed = next(x for x in out.splitlines()
                if x.startswith("rcu_harness: seed ")).split()[2]     # the failing seed
    result.stdout.fnmatch_lines([
        f"reproduce: pytest -p no:rcu_pgdat -p rcu_pgdat.pytest_plugin "
        f"'test_user.py::test_broken' --rcu-sched {mode} --rcu-seeds {seed}-{seed} "
        "--rcu-steps 300"])
    line = next(x for x in out.splitlines() if x.startswith("reproduce: "))
    again = user.runpytest(*shlex.split(line)[2:])
    again.assert_outcomes(failed=1)
    assert report_of(again.stdout.str()) == report_of(out)
    assert line in again.stdout.str().splitlines()


SWEEP_TESTS = """
import pytest
from test_pytest_plugin import torture


@pytest.mark.rcu_sweep(seeds=range(1, 7))
def test_sweep(rcu_harness, rcu_seed):
    assert rcu_harness.seeds == (rcu_seed,) and 1 <= rcu_seed <= 6
    rcu_harness.run(torture("memb"))


@pytest.mark.rcu_sweep("0-11")
def test_sweep_broken(rcu_harness):
    rcu_harness.run(torture("qsbr-no-wait", reads=2))
"""


def test_sweep_items_carry_their_seed_and_xdist_spreads_them(user: pytest.Pytester) -> None:
    user.makepyfile(test_sweep=SWEEP_TESTS)
    expect_failing = failing_seeds(BROKEN, sched.SWEEP_DEFAULT, range(12), 400)
    assert 0 < len(expect_failing) < 12
    result = user.runpytest_subprocess(*PLUGIN, "-n", "2", "-v", "--rcu-steps", "400")
    result.assert_outcomes(passed=6 + 12 - len(expect_failing), failed=len(expect_failing))
    out = result.stdout.str()
    for seed in range(1, 7):
        assert f"PASSED test_sweep.py::test_sweep[rcu-seed-{seed}]" in out
    assert "[gw0]" in out and "[gw1]" in out
    failed = sorted(int(s) for s in re.findall(      # the short summary's lines
        r"^FAILED test_sweep.py::test_sweep_broken\[rcu-seed-(\d+)\]", out, re.M))
    assert failed == expect_failing                 # same seed, same run, any worker
    seed = expect_failing[0]
    assert (f"reproduce: pytest -p no:rcu_pgdat -p rcu_pgdat.pytest_plugin "
            f"'test_sweep.py::test_sweep_broken[rcu-seed-{seed}]' "
            f"--rcu-sched {sched.SWEEP_DEFAULT} --rcu-seeds {seed}-{seed} --rcu-steps 400") in out


def test_command_line_seeds_override_the_marker(user: pytest.Pytester) -> None:
    user.makepyfile(test_sweep=SWEEP_TESTS)
    result = user.runpytest(*PLUGIN, "--collect-only", "-q", "--rcu-seeds", "7-8")
    result.stdout.fnmatch_lines(["test_sweep.py::test_sweep[[]rcu-seed-7[]]",
                                 "test_sweep.py::test_sweep[[]rcu-seed-8[]]",
                                 "test_sweep.py::test_sweep_broken[[]rcu-seed-7[]]",
                                 "test_sweep.py::test_sweep_broken[[]rcu-seed-8[]]",
                                 "4 tests collected*"])


def test_bad_options_and_markers_are_usage_errors(user: pytest.Pytester) -> None:
    user.makepyfile(test_bad="""
import pytest

@pytest.mark.rcu_sweep("1-3")
def test_without_fixture():
    pass
""")
    result = user.runpytest(*PLUGIN, "--rcu-seeds", "9-2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--rcu-seeds: seeds '9-2': need 0 <= A <= B in A-B*"])
    result = user.runpytest(*PLUGIN, "--rcu-sched", "bogus")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result = user.runpytest(*PLUGIN)
    result.stdout.fnmatch_lines(["*rcu_sweep needs the rcu_harness fixture*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


STALL_TESTS = """
import _thread


def test_stall(rcu_harness):
    blocker = _thread.allocate_lock()
    blocker.acquire()

    def setup(h):
        h.spawn("stuck", lambda: blocker.acquire())   # a C lock: invisible to the scheduler
    rcu_harness.run(setup)
"""


def test_stall_under_pytest_timeout_fails_with_the_hang_report(user: pytest.Pytester) -> None:
    user.makepyfile(test_stall=STALL_TESTS)
    # A 7 s limit: the hang is reported at 2 s (hang_timeout_for), room for a slow
    # start of the run on a loaded machine without a GIL.
    result = user.runpytest_subprocess(*PLUGIN, "--timeout", "7", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "BUG: stall of the run: a thread is blocked where the scheduler cannot see" in out
    assert "hang at step 1: model thread stuck ran for more than 2 s" in out
    assert "blocker.acquire()" in out                    # the stuck thread's own frame
    assert "reproduce: pytest -p no:rcu_pgdat" in out
    assert "Timeout" not in out                          # pytest-timeout did not fire


def within(limit: float, hang: float) -> bool:
    """The hang report and the scheduler's join of the stuck thread end in time."""
    return hang + max(1.0, hang) <= limit - 0.5


@settings(max_examples=100, deadline=None)
@given(st.floats(2.0, 3600.0))
def test_hang_timeout_leaves_room_below_the_pytest_timeout(limit: float) -> None:
    assert within(limit, hang_timeout_for(limit))
    assert 0.1 <= hang_timeout_for(limit) <= DEFAULT_HANG_TIMEOUT
    assert hang_timeout_for(None) == DEFAULT_HANG_TIMEOUT


def test_broken_hang_timeouts_would_be_killed() -> None:
    """Broken choices the check rejects: the scheduler's default, blind to the test's
    limit, and ``limit / 4``, which forgets the scheduler's 1 s join of the stuck
    thread (under 1.2 s it is done at 1.3 s)."""
    assert not within(2.0, DEFAULT_HANG_TIMEOUT) and within(2.0, hang_timeout_for(2.0))
    limit = 1.2
    quarter_done = limit / 4 + 1.0                  # the broken choice ends its join here
    ours_done = hang_timeout_for(limit) + 1.0
    assert quarter_done > limit >= ours_done


def test_the_entry_point_loads_the_plugin(user: pytest.Pytester, tmp_path: Path) -> None:
    """What setup.cfg's ``pytest11: rcu_pgdat = rcu_pgdat.pytest_plugin`` installs, as
    a dist-info on sys.path: pytest loads the plugin with no ``-p``, and the reproduce
    line needs none; ``-p no:rcu_pgdat -p rcu_pgdat.pytest_plugin`` still works."""
    dist = tmp_path / "rcu_ep_check-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rcu-ep-check\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[pytest11]\nrcu_pgdat = rcu_pgdat.pytest_plugin\n")
    user.syspathinsert(tmp_path)
    user.makepyfile(test_user=USER_TESTS)
    plain = user.runpytest("-k", "broken", "--rcu-seeds", "0-9", "--rcu-steps", "500")
    plain.assert_outcomes(failed=1)
    plain.stdout.fnmatch_lines(["reproduce: pytest 'test_user.py::test_broken' --rcu-sched*"])
    by_name = user.runpytest(*PLUGIN, "-k", "broken", "--rcu-seeds", "0-9",
                             "--rcu-steps", "500")
    by_name.assert_outcomes(failed=1)
    assert report_of(by_name.stdout.str()) == report_of(plain.stdout.str())


@pytest.fixture(autouse=True)
def _no_stray_model_state() -> Iterator[None]:
    """Every test leaves the default scheduler installed."""
    active = sched.active()
    yield
    assert sched.active() is active
