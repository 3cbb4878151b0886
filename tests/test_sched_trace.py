"""Schedule traces: same seed, same bytes (also across processes and hash seeds); the
file round-trips; bad or mismatched traces fail with a TraceError that says why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rcu_pgdat import sched
from rcu_pgdat.errors import RCUPgdatError, TraceError
from rcu_pgdat.sched.examples import lost_update, use_after_free

ROOT = Path(__file__).resolve().parents[1]

# A tiny program whose thread names and labels hash differently under each hash seed.
CHILD = """
import sys
from rcu_pgdat import sched
from rcu_pgdat.sched.examples import use_after_free
mode, seed = sys.argv[1], int(sys.argv[2])
run = sched.run_program(use_after_free(), sched.make_strategy(mode, seed, pct_steps=20))
sys.stdout.write(run.trace.dumps())
"""


def trace_of(mode: str, seed: int) -> str:
    run = sched.run_program(use_after_free(), sched.make_strategy(mode, seed, pct_steps=20))
    assert run.trace is not None
    return run.trace.dumps()


@pytest.mark.parametrize("mode", ["random", "pct"])
def test_same_seed_same_trace_bytes_in_process(mode: str) -> None:
    for seed in range(5):
        assert trace_of(mode, seed) == trace_of(mode, seed)
    assert len({trace_of(mode, seed) for seed in range(8)}) > 1   # seeds do matter


@pytest.mark.parametrize("mode", ["random", "pct"])
def test_same_seed_same_trace_bytes_across_processes_and_hash_seeds(mode: str) -> None:
    seed = 3
    outputs = []
    for hash_seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed,
                   PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(seed)], env=env,
                              capture_output=True, text=True, timeout=60, check=True)
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1] == trace_of(mode, seed)


def failing_run() -> sched.RunResult:
    swept = sched.sweep(lost_update(), "random", range(300), stop_at_first=True)
    assert swept.first is not None
    return swept.first


def test_trace_file_round_trips_and_replays_from_its_path(tmp_path: Path) -> None:
    run = failing_run()
    assert run.trace is not None
    path = tmp_path / "schedule.json"
    run.trace.save(path)
    loaded = sched.Trace.load(path)
    assert loaded == run.trace and loaded.dumps() == path.read_text()
    head = json.loads(path.read_text())
    assert head["format"] == "rcu-pgdat-schedule" and head["version"] == 4
    again = sched.replay(lost_update(), str(path))
    assert again.failed and again.trace is not None and again.trace.dumps() == loaded.dumps()


def text_of(run: sched.RunResult) -> dict:
    assert run.trace is not None
    return json.loads(run.trace.dumps())


@pytest.mark.parametrize("edit, message", [
    (lambda d: "{not json", "is not valid JSON"),
    (lambda d: "[1, 2]", "a trace is a JSON object"),
    (lambda d: {**d, "format": "pcap"}, "not a schedule trace"),
    (lambda d: {**d, "version": 99}, "trace version 99 is not supported"),
    (lambda d: {**d, "steps": [[0, "inc-a"]]}, "steps[0] must be [step, thread, label]"),
    (lambda d: {**d, "steps": [[0, "inc-a", "start"], [0, "inc-b", "start"]]},
     "not after step 0"),
    (lambda d: {**d, "steps": [[0, "zed", "start"]]}, "names thread 'zed'"),
    (lambda d: {**d, "threads": "inc-a"}, "'threads' must be a list"),
])
def test_malformed_traces_are_rejected_with_a_reason(edit, message) -> None:  # type: ignore[no-untyped-def]
    edited = edit(text_of(failing_run()))
    text = edited if isinstance(edited, str) else json.dumps(edited)
    with pytest.raises(TraceError, match=message.replace("[", r"\[").replace("]", r"\]")):
        sched.Trace.loads(text)


def test_trace_error_is_a_harness_error() -> None:
    assert issubclass(TraceError, RCUPgdatError)
    with pytest.raises(TraceError, match="cannot read trace file"):
        sched.Trace.load("/nonexistent/schedule.json")


def rename(data: dict, old: str, new: str) -> dict:
    data = dict(data)
    data["threads"] = [new if t == old else t for t in data["threads"]]
    data["steps"] = [[s, new if t == old else t, label] for s, t, label in data["steps"]]
    return data


def test_replay_of_a_trace_naming_an_unknown_thread_fails() -> None:
    trace = sched.Trace.loads(json.dumps(rename(text_of(failing_run()), "inc-b", "inc-z")))
    with pytest.raises(TraceError, match="'inc-z', which this run never started"):
        sched.replay(lost_update(), trace)


def test_replay_of_a_blocked_thread_fails_with_the_step() -> None:
    # Correct lost_update: once inc-a holds the mutex, inc-b cannot take it. Record a
    # run, then make inc-b take a step where it was blocked.
    make = lost_update(correct=True, work=0)
    run = sched.run_program(make, sched.GuidedStrategy([("inc-a", 2, "inc-b")]))
    data = text_of(run)
    steps = data["steps"]
    i = next(k for k, (_, t, label) in enumerate(steps) if t == "inc-b" and label == "lock counter")
    j = next(k for k in range(i) if steps[k][1] == "inc-a" and k > 2)
    steps[j], steps[i] = [steps[j][0], "inc-b", "lock counter"], [steps[i][0], "inc-a", steps[j][2]]
    with pytest.raises(TraceError, match=r"step \d+: thread 'inc-b' is not runnable: it "
                                         "waits for lock counter"):
        sched.replay(make, sched.Trace.loads(json.dumps(data)))


def test_replay_against_a_different_program_fails() -> None:
    run = failing_run()
    assert run.trace is not None
    with pytest.raises(TraceError, match="thread 'inc-a' is at 'counter.load' but the "
                                         "trace has it at 'local work'"):
        sched.replay(lost_update(work=0), run.trace)
    short = run.trace.with_(steps=run.trace.steps[:3])
    with pytest.raises(TraceError, match="the trace ends after 3 steps"):
        sched.replay(lost_update(), short)
    assert sched.replay(lost_update(), short, strict=False).trace is not None
