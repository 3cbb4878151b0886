"""The collector, the violation kinds and the report format."""

from __future__ import annotations

import re
import sys
import threading

import pytest

from rcu_pgdat.check import (
    Collector,
    Kind,
    Violation,
    ViolationError,
    kinds,
    thread_stacks,
)
from rcu_pgdat.check import _stack
from rcu_pgdat.check.testing import STEP_TIMEOUT, Actors

#: The documented set; changing a string breaks every CI script that matches on it.
STABLE_KINDS = {
    "use-after-free", "double-free", "invalid-free", "stale-generation", "gp-too-short",
    "pipeline", "rcu-deref-outside-reader", "sleep-in-atomic", "section-leak",
    "thread-exception", "bug", "stall", "deadlock", "livelock",
}


def bug(subject: str = "in node 1: x") -> Violation:
    return Violation.capture(Kind.BUG, subject, threading.current_thread().name,
                             what="BUG_ON fired")


def test_kinds_are_the_documented_stable_strings() -> None:
    assert {k.value for k in Kind} == STABLE_KINDS
    doc = kinds.__doc__ or ""
    for kind in Kind:
        assert f"\n{kind.value} " in doc               # a row of the table
        assert kind == kind.value and f"{kind}" == str(kind) == kind.value


def test_report_layout_is_sanitizer_style_and_deterministic() -> None:
    reports = [bug().format() for _ in range(2)]
    assert reports[0] == reports[1]
    lines = reports[0].splitlines()
    assert lines[0] == lines[-1] == "=" * 66
    assert lines[1] == "BUG: bug in node 1: x"
    assert lines[2] == "BUG_ON fired"
    # Innermost frame first, file relative to the checkout (absolute if installed).
    assert re.fullmatch(r"    #0 bug (\S*/)?tests/test_check_collector\.py:\d+", lines[3])
    assert "rcu_pgdat/check" not in reports[0]          # the oracles' frames are trimmed


def test_stop_on_first_keeps_one_and_stops() -> None:
    collector = Collector()
    assert not collector.stopped and collector.ok
    first = collector.report(bug("in a"))
    collector.report(bug("in b"))
    assert collector.violations == [first] and collector.suppressed == 1
    assert collector.stopped and not collector.ok
    assert "1 later violation(s) not kept" in collector.format()


def test_gather_all_and_context_lines() -> None:
    collector = Collector(stop_on_first=False)
    collector.add_context(lambda: "reproduce: rcu-pgdat-stress --seed 7")
    collector.add_context(lambda: str(1 // 0))
    for name in ("a", "b"):
        collector.report(bug(f"in {name}"))
    assert not collector.stopped and len(collector.violations) == 2
    report = collector.violations[0].format()
    assert "reproduce: rcu-pgdat-stress --seed 7" in report
    assert "(context provider failed: ZeroDivisionError" in report
    collector.stop()
    assert collector.stopped


@pytest.mark.parametrize("stop_on_first", [False, True])
def test_no_violation_is_lost_under_concurrent_reports(stop_on_first: bool) -> None:
    collector = Collector(stop_on_first=stop_on_first)
    start = threading.Barrier(8)

    def reporter() -> None:
        start.wait(STEP_TIMEOUT)
        for i in range(200):
            collector.report(bug(f"in {threading.current_thread().name}/{i}"))

    threads = [threading.Thread(target=reporter, name=f"r{i}") for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(STEP_TIMEOUT)
    kept = len(collector.violations)
    assert kept + collector.suppressed == 1600
    assert kept == (1 if stop_on_first else 1600)
    assert len({v.subject for v in collector.violations}) == kept


def raise_in_worker() -> None:
    raise ValueError("zone list corrupt")


def test_exceptions_in_threads_become_violations() -> None:
    collector = Collector(stop_on_first=False)
    previous = threading.excepthook
    with collector.install_excepthook():
        for target, name in ((raise_in_worker, "allocator-1"),
                             (lambda: (_ for _ in ()).throw(SystemExit(0)), "quitter"),
                             (lambda: (_ for _ in ()).throw(ViolationError(bug())), "dup")):
            thread = threading.Thread(target=target, name=name)
            thread.start()
            thread.join(STEP_TIMEOUT)
    assert threading.excepthook is previous
    (violation,) = collector.violations
    assert violation.kind == "thread-exception" and violation.thread == "allocator-1"
    assert violation.title == ("BUG: thread-exception in allocator-1: ValueError: "
                               "zone list corrupt")
    assert violation.stack[0][2] == "raise_in_worker"


def test_report_exception_names_the_cause() -> None:
    collector = Collector()
    try:
        try:
            raise KeyError("nid")
        except KeyError as inner:
            raise RuntimeError("lookup failed") from inner
    except RuntimeError as exc:
        collector.report_exception(exc, "iterator-0")
    report = collector.violations[0].format()
    assert "while handling KeyError: 'nid'" in report
    assert "test_report_exception_names_the_cause" in report


def test_the_stack_of_another_running_thread_is_read_only_under_the_gil() -> None:
    """Without the GIL, reading the frames of a thread that runs on can crash the
    interpreter, so ``of`` leaves them out there; under the GIL it shows them."""
    running = threading.Event()
    stop = threading.Event()

    def spin(depth: int = 3) -> None:
        if depth:
            spin(depth - 1)
            return
        running.set()
        while not stop.is_set():
            len(str(depth))               # calls in and out: frames come and go

    spinner = threading.Thread(target=spin, name="spinner", daemon=True)
    spinner.start()
    try:
        assert running.wait(STEP_TIMEOUT)
        theirs = _stack.of(spinner)
    finally:
        stop.set()
        spinner.join(STEP_TIMEOUT)
    mine = _stack.of(threading.current_thread())
    assert mine[0][2] == "test_the_stack_of_another_running_thread_is_read_only_under_the_gil"
    if getattr(sys, "_is_gil_enabled", lambda: True)():
        assert [frame[2] for frame in theirs[:4]] == ["spin"] * 4, theirs
    else:
        assert theirs == ()


def test_thread_stacks_show_every_thread_by_name() -> None:
    parked = threading.Event()
    release = threading.Event()

    def park() -> None:
        parked.set()
        release.wait(STEP_TIMEOUT)

    with Actors("parked-worker") as a:
        a.start("parked-worker", park)
        assert parked.wait(STEP_TIMEOUT)
        text = thread_stacks()
        release.set()
    assert re.search(r"thread parked-worker:\n    #0 park \S*tests/test_check_collector", text)
    assert "thread MainThread:" in text
