"""The oracle benchmark runs and prints every pair (its figures go in reports)."""

from __future__ import annotations

import math

import pytest

from stress import bench_oracles


def test_benchmark_measures_every_pair_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_oracles.main(["--number", "2000", "--repeat", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("bench_oracles: CPython") and "number=2000" in out[0]
    rows = {line[:30].strip(): line.split() for line in out[2:]}
    assert set(rows) == {"field read (raw)", "field read (reference)", "field write (raw)",
                         "field write (reference)", "section_begin + section_end",
                         "deref (inside a section)"}
    for name, base, checked in bench_oracles.measure(number=2000, repeat=3):
        assert math.isfinite(base) and base > 0 and math.isfinite(checked)
        if name.startswith("section_begin"):
            assert checked > base           # ~15x in practice: a lock and two records
