"""The oracle benchmark, throughput with the oracles on and off, and the bench run under
several interpreters with the tables side by side."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from stress import bench
from stress.bench import _interp, overhead, throughput
from stress.bench._common import Options, Section


def test_benchmark_measures_every_pair_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--quick", "--only", "oracles"]) == 0
    out = capsys.readouterr().out
    names = {"field read (raw)", "field read (reference)", "field write (raw)",
             "field write (reference)", "section_begin + section_end",
             "deref (inside a section)"}
    assert all(f"| {name} |" in out for name in names), out
    got = overhead.measure_oracles(number=2000, repeat=3)
    assert {name for name, _, _ in got} == names
    for name, base, checked in got:
        assert math.isfinite(base) and base > 0 and math.isfinite(checked)
        if name.startswith("section_begin"):
            assert checked > base           # a record and a thread-local lookup, at least


def test_throughput_with_the_oracles_on_and_off_is_clean() -> None:
    got = throughput.measure(readers=(1,), schemes=("rcu",), duration=0.1, repeat=1,
                             oracles=(True, False))
    assert got["violations"] == []
    # Rates only: a loaded machine may give a run of 0.1 s no read at all.
    for on in ("on", "off"):
        (sample,) = got["reads_per_s"]["walk"][on]["rcu"][1]
        assert math.isfinite(sample) and sample >= 0


def _part(values: list[list[object]], status: str = "ok") -> dict[str, object]:
    return {"title": "T", "status": status, "columns": ["scheme", "oracles", "a", "b"],
            "rows": values, "notes": ["n"]}


def test_side_by_side_matches_rows_on_their_keys() -> None:
    sec = _interp.side_by_side("t", [
        ("3.11.7", _part([["rcu", "on", 1, 2], ["rwlock", "on", 3, 4]])),
        ("3.13.5t", _part([["rwlock", "on", 30, 40], ["reuse", "on", 50, 60]])),
        ("3.12.1", _part([], status="not available"))], keys=2)
    assert sec.columns == ["scheme", "oracles", "a [3.11.7]", "a [3.13.5t]",
                           "b [3.11.7]", "b [3.13.5t]"]
    assert sec.rows == [["rcu", "on", 1, None, 2, None], ["rwlock", "on", 3, 30, 4, 40],
                        ["reuse", "on", None, 50, None, 60]]
    assert sec.notes == ["[3.11.7] n", "[3.13.5t] n", "[3.12.1] n"]
    assert "| rwlock | on | 3 | 30 | 4 | 40 |" in sec.text()


def test_also_runs_a_section_under_another_interpreter(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--only", "oracles", "--also", sys.executable,
                       "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    sec = doc["sections"]["oracles"]
    here = _interp.label(doc["env"])
    assert doc["env"]["also"] == [sys.executable]
    assert sec["columns"][:3] == ["operation", f"plain ns [{here}]", f"plain ns [{here}']"]
    assert set(sec["data"]["interpreters"]) == {here, here + "'"}
    assert all(isinstance(cell, float) for row in sec["rows"] for cell in row[1:])
    assert "side by side" in capsys.readouterr().out


def test_also_with_a_missing_interpreter_is_a_usage_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--only", "oracles", "--also", "/nonexistent/python9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--also /nonexistent/python9: no such interpreter" in err[0]


def test_a_child_that_fails_leaves_the_local_table_and_says_why(tmp_path: Path) -> None:
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'boom: cannot start' >&2\nexit 3\n")
    broken.chmod(0o755)
    local = Section("oracles", "T", ["operation", "x"], [["a", 1.0]])
    opts = Options(quick=True, also=(str(broken),))
    sec = _interp.merged(local, opts)
    assert sec.rows == [["a", 1.0]]
    assert sec.notes[-1] == f"!!! not measured under {broken} exited 3: boom: cannot start"
