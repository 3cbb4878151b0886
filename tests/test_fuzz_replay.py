"""Bad ``--replay`` files, fuzzed: truncated, binary, wrong version or format, wrong
configuration, broken structure, huge. Each is refused in one line (exit 2) or, when
what is left still describes a run the harness can make, replayed (0 or 1): never a
traceback, never a hang."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import DEFAULT_FUZZ, NIGHTLY_FUZZ, anything, run_cli
from hypothesis import event, given
from hypothesis import strategies as st

#: The recorded run every mutation starts from.
RECORD = ["--scenario", "TINY", "--sched", "random", "--seed", "3", "--steps", "300",
          "--quiet"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("trace") / "recorded.json"
    assert run_cli([*RECORD, "--trace-out", str(path)]).check().code == 0
    doc: dict[str, Any] = json.loads(path.read_text())
    assert run_cli(["--replay", str(path), "--quiet"]).check().code == 0    # as recorded
    return doc


def _dump(doc: Any) -> bytes:
    return json.dumps(doc).encode()


@st.composite
def mutated(draw: st.DrawFn, doc: dict[str, Any]) -> bytes:
    """The recorded trace, damaged in one of the ways a file gets damaged."""
    text = _dump(doc)
    how = draw(st.sampled_from(["truncate", "binary", "flip", "version", "format",
                                "param", "drop", "field", "steps", "threads"]))
    event(how)
    doc = json.loads(text)
    if how == "truncate":
        return text[:draw(st.integers(0, len(text) - 1))]
    if how == "binary":
        return draw(st.binary(max_size=2000))
    if how == "flip":
        at = draw(st.integers(0, len(text) - 1))
        return text[:at] + bytes([draw(st.integers(0, 255))]) + text[at + 1:]
    if how in ("version", "format"):
        doc[how] = draw(anything)
    elif how == "param":
        params = doc["meta"]["params"]
        params[draw(st.sampled_from(sorted(params)) | st.text(max_size=6))] = draw(anything)
    elif how == "drop":
        del doc[draw(st.sampled_from(sorted(doc)))]
    elif how == "field":
        doc[draw(st.sampled_from(sorted(doc)))] = draw(anything)
    elif how == "steps":
        steps = doc["steps"]
        i = draw(st.integers(0, len(steps) - 1))
        steps[i] = draw(st.one_of(anything, st.lists(anything, min_size=3, max_size=3)))
    else:
        doc["threads"] = draw(st.lists(st.text(max_size=6), max_size=4))
    return _dump(doc)


def _replay_damaged(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "damaged.json"
    path.write_bytes(data)
    ending = run_cli(["--replay", str(path), "--quiet"]).check()
    event(f"exit {ending.code}")
    assert ending.code in (0, 1, 2), ending
    if ending.code == 2:
        assert f"--replay {path}" in ending.err, ending


@DEFAULT_FUZZ
@given(data=st.data())
def test_damaged_traces_are_refused_or_replayed(tmp_path: Path, recorded: dict[str, Any],
                                                data: st.DataObject) -> None:
    _replay_damaged(tmp_path, data.draw(mutated(recorded)))


@pytest.mark.slow
@NIGHTLY_FUZZ
@given(data=st.data())
def test_damaged_traces_are_refused_or_replayed_nightly(
        tmp_path: Path, recorded: dict[str, Any], data: st.DataObject) -> None:
    _replay_damaged(tmp_path, data.draw(mutated(recorded)))


def _huge(recorded: dict[str, Any], what: str, size: int) -> bytes:
    doc = json.loads(_dump(recorded))
    if what == "nested":
        return b"[" * size + b"]" * size
    if what == "meta":
        doc["meta"]["junk"] = "x" * size
    elif what == "steps":
        last = doc["steps"][-1]
        doc["steps"] += [[last[0] + 1 + i, last[1], "spin"] for i in range(size)]
    return _dump(doc)


HUGE = [
    ("nested", 200_000, "is not valid JSON"),
    ("meta", 10_000_000, ""),     # 10 MB of junk beside a good trace: it still replays
    ("steps", 20_000, ""),        # steps recorded after the run's end: ignored
]


@pytest.mark.parametrize("what, size, needle", [
    *HUGE[:2], pytest.param(*HUGE[2], id="steps"),
    pytest.param("meta", 200_000_000, "", marks=pytest.mark.slow, id="meta-200MB"),
    pytest.param("steps", 1_000_000, "", marks=pytest.mark.slow, id="steps-1M"),
])
def test_huge_traces_end_in_bounded_time(tmp_path: Path, recorded: dict[str, Any],
                                         what: str, size: int, needle: str) -> None:
    path = tmp_path / f"huge-{what}.json"
    path.write_bytes(_huge(recorded, what, size))
    ending = run_cli(["--replay", str(path), "--quiet"]).check()
    assert (ending.code == 0) if not needle else (ending.code == 2 and needle in ending.err), \
        ending


def test_a_trace_of_another_configuration_is_refused(tmp_path: Path,
                                                      recorded: dict[str, Any]) -> None:
    doc = json.loads(_dump(recorded))
    doc["meta"]["params"]["allocators"] = 2           # another program than the recorded
    path = tmp_path / "other.json"
    path.write_bytes(_dump(doc))
    run_cli(["--replay", str(path), "--quiet"]).refused(2, "the program differs")
