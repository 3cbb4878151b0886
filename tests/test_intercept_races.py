"""Differential tests: bugs in unmodified plain-threading code (``plugins/plain_races``)
found with interception (and instrumentation where the race is between two accesses),
and the correct twin of each passing with no false hang and no false alarm."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any, Callable

import pytest

from rcu_pgdat.sched import Outcome, PCTStrategy, Program, RandomStrategy, explore, run_program
from rcu_pgdat.sched.accesses import Access, explain

sys.path.insert(0, str(Path(__file__).parent / "plugins"))

import plain_races  # noqa: E402

INSTRUMENT = ("plain_races",)


def program(name: str, correct: bool) -> Callable[[], Program]:
    scenario = getattr(plain_races, f"make_{name}")

    def make() -> Program:
        threads, check = scenario(correct)
        return Program(threads, check)
    return make


def sweep(name: str, correct: bool, n: int, **opts: Any) -> list[Any]:
    make = program(name, correct)
    runs = [run_program(make, RandomStrategy(s), **opts) for s in range(n)]
    runs += [run_program(make, PCTStrategy(s, depth=3, steps=60), **opts) for s in range(n)]
    return runs


def first_failure(runs: list[Any]) -> Any:
    return next((r for r in runs if r.failed), None)


# (scenario, instrumentation needed, failure outcome)
CASES = [("containment", True, Outcome.FAILED), ("condition", False, Outcome.DEADLOCK),
         ("busy_wait", False, Outcome.FAILED), ("aba", False, Outcome.FAILED)]


@pytest.mark.parametrize("name,needs,outcome", CASES)
def test_the_bug_is_found_in_unmodified_code(name: str, needs: bool, outcome: Outcome) -> None:
    opts: dict[str, Any] = {"instrument": INSTRUMENT} if needs else {}
    if name == "aba":          # a few in a thousand seeds: search the space instead
        found = explore(program(name, False), max_preemptions=3, **opts).failure
        assert found is not None and found.outcome is outcome
        return
    failing = first_failure(sweep(name, False, 50, **opts))
    assert failing is not None and failing.outcome is outcome


@pytest.mark.parametrize("name,needs,outcome", CASES)
def test_the_correct_twin_passes(name: str, needs: bool, outcome: Outcome) -> None:
    for opts in ({}, {"instrument": INSTRUMENT}):
        runs = sweep(name, True, 30, **opts)
        assert {r.outcome for r in runs} == {Outcome.OK}, first_failure(runs).describe()


def test_the_containment_race_needs_instrumentation() -> None:
    """Without points between the ``in`` test and the removal the window is invisible."""
    assert first_failure(sweep("containment", False, 50)) is None


def test_a_flag_spin_is_schedulable_when_instrumented() -> None:
    """No sleep in the loop: each re-read of the flag is a yield, so PCT's top-priority
    spinner gives way to the writer (no budget stall), and the bug is still found."""
    make = program("flag_spin", True)
    runs = [run_program(make, PCTStrategy(s, depth=1, steps=100), instrument=INSTRUMENT,
                        max_steps=2000) for s in range(10)]      # no change point at all
    runs += sweep("flag_spin", True, 10, instrument=INSTRUMENT, max_steps=2000)
    assert {r.outcome for r in runs} == {Outcome.OK}
    failing = first_failure(sweep("flag_spin", False, 30, instrument=INSTRUMENT))
    assert failing is not None and failing.outcome is Outcome.FAILED


def test_the_aba_needs_more_than_one_preemption() -> None:
    make = program("aba", False)
    assert explore(make, max_preemptions=1).failure is None
    assert explore(make, max_preemptions=3).failure is not None
    twin = explore(program("aba", True), max_preemptions=2)
    assert twin.exhausted and twin.failure is None


def test_instrumentation_explains_the_containment_race() -> None:
    failing = first_failure(sweep("containment", False, 50, instrument=INSTRUMENT))
    why = failing.explanation()
    assert "both tested list (plain_races.py:" in why
    assert "before either changed it (plain_races.py:" in why
    assert why in failing.describe()


def test_instrumentation_explains_a_lost_update_data_race_style() -> None:
    failing = first_failure(sweep("counter", False, 30, instrument=INSTRUMENT))
    assert failing is not None
    why = failing.explanation("check")
    assert "threads inc-1 and inc-2 both read Counter.value (plain_races.py:" in why \
        or "threads inc-2 and inc-1 both read Counter.value (plain_races.py:" in why
    assert "before either wrote it" in why
    assert {r.outcome for r in sweep("counter", True, 20, instrument=INSTRUMENT)} == \
        {Outcome.OK}


def test_instrumentation_is_removed_after_the_run() -> None:
    run_program(program("containment", True), RandomStrategy(0), instrument=INSTRUMENT)
    if hasattr(sys, "monitoring"):
        assert sys.monitoring.get_tool(4) is None and sys.monitoring.get_tool(3) is None
    assert threading.gettrace() is None


def test_an_unknown_module_is_a_usage_error() -> None:
    from rcu_pgdat.errors import UsageError
    with pytest.raises(UsageError, match="cannot instrument 'no_such_module'"):
        run_program(program("containment", True), RandomStrategy(0),
                    instrument=("no_such_module",))


# -- the explanation on its own --------------------------------------------------------------


def acc(step: int, thread: str, op: str, field: str = "v", root: int = 1) -> Access:
    return Access(step, thread, op, root, field, f"State.{field}", f"prog.py:{10 + step}")


def test_explain_lost_update() -> None:
    log = [acc(1, "A", "read"), acc(2, "B", "read"), acc(3, "B", "write"), acc(4, "A", "write")]
    assert explain(log, "A").endswith(
        "threads A and B both read State.v (prog.py:11, prog.py:12) before either wrote it "
        "(prog.py:13, prog.py:14): neither saw the other's change")


def test_explain_write_between_and_free() -> None:
    log = [acc(1, "R", "read", "a"), acc(2, "F", "free", "*"), acc(3, "R", "read", "b")]
    why = explain(log, "R")
    assert "thread F freed State (prog.py:12) between two accesses of thread R" in why


def test_explain_last_pair_and_nothing() -> None:
    assert "thread B wrote State.v (prog.py:12) after thread A read it" in explain(
        [acc(1, "A", "read"), acc(2, "B", "write")])
    assert explain([acc(1, "A", "read"), acc(2, "B", "read")]) == ""
    assert explain([acc(1, "A", "write", root=1), acc(2, "B", "write", root=2)]) == ""
    assert explain([acc(1, "A", "write"), acc(2, "A", "write")]) == ""
    assert explain([]) == ""


def test_note_access_feeds_the_explanation() -> None:
    """What a memory checker calls: accesses it observes appear in the explanation."""
    from rcu_pgdat import sched

    def make() -> Program:
        obj = plain_races.Mailbox()

        def reader() -> None:
            sched.note_access("read", obj, "payload")
            first = obj.payload
            sched.point("between")
            sched.note_access("read", obj, "payload")
            assert obj.payload == first, "changed under the reader"

        def writer() -> None:
            sched.note_access("write", obj, "payload")
            obj.payload = 1
        return Program({"reader": reader, "writer": writer})
    failing = next(r for r in (run_program(make, RandomStrategy(s)) for s in range(30))
                   if r.failed)
    assert "thread writer wrote Mailbox.payload" in failing.explanation()
    assert "between two accesses of thread reader" in failing.explanation()


def test_explain_keeps_a_free_that_left_the_window() -> None:
    """A use long after the free: the free is older than the accesses explained."""
    log = [acc(0, "F", "free", "*")] + [acc(i, "X", "read", root=2) for i in range(1, 1500)]
    log.append(acc(1500, "R", "read", "b"))
    assert "thread R read State.b (prog.py:1510) after thread F freed it" in explain(log, "R")


def test_explain_a_write_between_is_to_the_same_field() -> None:
    """A write to another field of the object is no cause; the earlier free is."""
    log = [acc(0, "F", "free", "*"), acc(1, "R", "read", "a"), acc(2, "W", "write", "c"),
           acc(3, "R", "read", "b")]
    why = explain(log, "R")
    assert "State.c" not in why
    assert "thread R read State.b (prog.py:13) after thread F freed it" in why


def test_a_model_use_after_free_is_explained_by_its_free() -> None:
    """The tracked model's own fields feed the access log: a controlled run of the
    RFC as posted (SRCU readers not waited for) names the free and the late read."""
    from stress.controlled import run_controlled
    from stress.run import RunConfig

    for seed in range(1, 11):
        result = run_controlled(RunConfig(remover="posted", sched="random", seed=seed,
                                          steps=20000))
        if result.violations:
            break
    else:
        pytest.fail("the posted remover survived 10 random seeds")
    assert result.schedule is not None
    why = result.schedule.explanation(result.violations[0].thread)
    assert "freed it" in why or "freed Pgdat" in why or "freed Zone" in why, why
    assert "remover" in why, why
