"""The benchmark tool: its output shape, its side-by-side timing and its detection logic.

No test here asserts a timing: the figures are whatever the machine gives. What is
checked is the shape of the JSON and the tables, that comparisons really interleave,
that the statistics are right, and that the detection section tells a broken program
from its correct twin (same seeds, so the verdicts are deterministic under PCT).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import timeit
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rcu_pgdat.rcu import Memb
from stress import bench, cli
from stress import run as stress_run
from stress.bench import (_common, _plot, catch_rate, catch_time, latency, overhead, read_side,
                          scale, seeds)
from stress.bench import throughput
from stress.bench.targets import (NO_WAIT_FLAVOR, no_wait_program, rcu_program, srcu_program,
                                  wrong_flavor_program)

ROOT = Path(__file__).resolve().parent.parent


def _check_section_shape(sec: dict[str, Any]) -> None:
    assert sec["status"] == "ok"
    assert set(sec) == {"title", "status", "columns", "rows", "notes", "data", "seconds"}
    assert sec["rows"], "a measured section has rows"
    for row in sec["rows"]:
        assert len(row) == len(sec["columns"])
        assert all(c is None or isinstance(c, (int, float, str)) for c in row)


# -- the command line and the JSON document ---------------------------------------------


def test_quick_read_side_json_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--only", "read-side", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["format"] == "rcu-pgdat-bench" and doc["version"] == 1
    env = doc["env"]
    assert {"date", "python", "cpu", "cpus", "command", "quick"} <= set(env)
    assert env["quick"] is True and env["command"].startswith("rcu-pgdat-stress bench ")
    assert list(doc["sections"]) == doc["order"] == ["read-side"]
    sec = doc["sections"]["read-side"]
    _check_section_shape(sec)
    rows = {row[0]: row for row in sec["rows"]}
    assert set(rows) == set(read_side.ROWS) - {read_side.LOOP}
    assert rows[read_side.EMPTY][3] == 1.0              # the unit divided by itself
    for name, row in rows.items():
        assert row[1] > 0 and math.isfinite(row[1]), name
    assert len(sec["data"]["samples_ns"]["QSBR, fast, handle"]) == sec["data"]["repeat"]
    text = capsys.readouterr().out
    assert "### Read-side cost of a lock/unlock pair" in text
    assert "| SRCU, fast, handle |" in text
    assert sum("(target <=" in note for note in sec["notes"]) == len(read_side.TARGETS)
    assert f"{env['implementation']} {env['python']}" in text


def test_json_to_stdout_puts_the_table_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--quick", "--only", "callbacks", "--json", "-"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    sec = doc["sections"]["callbacks"]
    _check_section_shape(sec)
    for row in sec["rows"]:
        assert row[1] == row[2]                # every queued callback ran before barrier
    assert "### Callbacks per second" in captured.err


def test_cli_dispatches_bench_and_lists_sections(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == list(bench.SECTIONS)


def test_python_dash_m_runs_the_tool() -> None:
    proc = subprocess.run([sys.executable, "-m", "stress.bench", "--list"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "detection" in proc.stdout


def test_seeds_section_reuses_the_scheduler_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    # A budget of seeds, not of time: about 1,500 controlled runs at --quick's 40 seeds
    # outlived the timeout on a free-threaded build under load.
    monkeypatch.setattr(seeds, "SEEDS", (10, 10))
    sec = seeds.section(_common.Options(quick=True))
    assert sec.data["seeds"] == 10
    assert not any(note.startswith("!!!") for note in sec.notes), sec.notes
    assert [r[0] for r in sec.rows] == ["lost-update", "use-after-free",
                                        "publish-before-init"]
    assert sec.columns[0] == "race" and len(sec.columns) == len(sec.rows[0])
    for race, modes in sec.data["races"].items():
        for mode, got in modes.items():
            assert 0 <= got["failing"] <= sec.data["seeds"], (race, mode)
            assert (got["needed"] is None) == (got["failing"] == 0)


@pytest.mark.parametrize("argv, words", [
    (["--only", "nosuch"], "unknown section nosuch"),
    (["--sched", "pct"], "invalid choice"),
    (["--frobnicate"], "unrecognized arguments"),
    (["--only", "read-side", "--plot", "x.png"], "--only leaves both out"),
])
def test_usage_errors_exit_2_with_one_line(argv: list[str], words: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and err[0].startswith("rcu-pgdat-stress bench")


def test_plot_without_matplotlib_fails_before_measuring(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import raises ImportError
    def must_not_run(spec: str) -> Any:
        raise AssertionError("measured before the usage error")
    monkeypatch.setattr(bench, "_section_function", must_not_run)
    assert bench.main(["--only", "read-side,catch-time", "--plot", "out.png"]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err


def test_plot_draws_latency_and_catch_time_panels(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = mock.MagicMock()
    fake.subplots.return_value = (mock.MagicMock(), [[mock.MagicMock(), mock.MagicMock()]])
    monkeypatch.setattr(_plot, "require_matplotlib", lambda: fake)
    doc = {"env": {"date": "d", "python": "3", "cpu": "c"}, "sections": {
        "gp-latency": {"status": "ok", "data": {"cells": [
            {"nodes": 4, "readers": 1, "latencies": {"rcu:qsbr": [0.001, 0.002]}}]}},
        "catch-time": {"status": "ok", "data": {"budget": 1.0, "targets": {"t": {"modes": {
            "pct": [{"caught": True, "seconds": 0.1, "runs": 3},
                    {"caught": False, "seconds": 1.0, "runs": 9}]}}}}}}}
    assert _plot.plot(doc, "x.png") == ["gp-latency", "catch-time"]
    fake.subplots.return_value[0].savefig.assert_called_once_with("x.png", dpi=110)
    with pytest.raises(_plot.PlotUnavailableError, match="neither was run"):
        _plot.plot({"env": doc["env"], "sections": {}}, "x.png")


def test_a_section_whose_machinery_cannot_import_is_not_available(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(bench.SECTIONS, "detection", ("catch bugs", "no_such_module:section"))
    doc = bench.run_sections(["detection"], _common.Options(quick=True), "cmd")
    sec = doc["sections"]["detection"]
    assert sec["status"] == "not available" and sec["rows"] == []
    assert "no_such_module" in sec["notes"][0] and "*not available*" in sec["text"]


def test_controlled_section_says_not_available_without_the_scheduler(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from rcu_pgdat import sched
    monkeypatch.delattr(sched, "run_program")
    sec = overhead.controlled_section(_common.Options(quick=True))
    assert sec.status == "not available" and not sec.rows
    assert "run_program" in sec.notes[0]
    assert not catch_time.Target("p", make_program=no_wait_program).can_run("naive")


# -- side by side, and the statistics -------------------------------------------------------


class _LoggingTimer(timeit.Timer):
    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__("pass")
        self.name, self.log = name, log

    def timeit(self, number: int = 1) -> float:
        self.log.append(self.name)
        return 0.5 * number


def test_interleaved_takes_every_timer_once_per_round() -> None:
    log: list[str] = []
    timers = {n: _LoggingTimer(n, log) for n in "abc"}
    samples = _common.interleaved(timers, number=4, repeat=3)
    assert log == list("abcabcabc")                      # round robin, not aaa bbb ccc
    assert samples == {n: [0.5, 0.5, 0.5] for n in "abc"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=40),
       st.floats(0, 100))
def test_median_and_percentile_are_order_statistics(values: list[float], q: float) -> None:
    assert min(values) <= _common.median(values) <= max(values)
    p = _common.percentile(values, q)
    assert p in values
    assert sum(v <= p for v in values) >= q / 100 * len(values)
    assert _common.percentile(values, 100) == max(values)


def test_statistics_of_nothing_and_ratios_of_missing_values() -> None:
    assert math.isnan(_common.median([])) and math.isnan(_common.percentile([], 50))
    assert _common.median([3.0, 1.0, 2.0, 10.0]) == 2.5
    assert _common.ratio(3.0, 2.0) == 1.5
    assert _common.ratio(None, 2.0) is None and _common.ratio(1.0, 0.0) is None
    assert _common.ratio(math.inf, 1.0) is None


@pytest.mark.parametrize("value, text", [(None, "n/a"), ("x", "x"), (12345, "12,345"),
                                         (1234.5, "1,234"), (3.14159, "3.14"),
                                         (0.000123, "0.000123"), (math.inf, "n/a")])
def test_cells_are_formatted_for_a_readme(value: _common.Cell, text: str) -> None:
    assert _common.fmt_cell(value) == text


def test_section_renders_a_markdown_table() -> None:
    sec = _common.Section("s", "Title", ["a", "b"], [["x", 1.5], ["y", None]], ["note"])
    assert sec.text() == ("### Title\n\n| a | b |\n|---|---:|\n| x | 1.5 |\n| y | n/a |\n\n"
                          "note\n")
    assert sec.as_dict()["rows"] == [["x", 1.5], ["y", None]]


# -- catch time: the broken programs are caught, their correct twins are not -------------


def _uaf(kind: str, subject: str) -> bool:
    return kind == "use-after-free"


@pytest.mark.parametrize("broken, correct", [
    (no_wait_program, lambda: rcu_program(Memb)),
    (wrong_flavor_program, lambda: srcu_program("srcu")),
])
def test_the_broken_program_is_caught_and_its_correct_twin_never(
        broken: Any, correct: Any) -> None:
    bad = catch_time.catch_once(catch_time.Target("bad", make_program=broken, expect=_uaf),
                               "pct", seed=1, budget=8.0)
    assert bad is not None and bad.caught and bad.detail.startswith("use-after-free in node")
    good = catch_time.catch_once(catch_time.Target("good", make_program=correct), "pct",
                                seed=1, budget=0.3)
    assert good is not None and not good.caught and good.runs >= 1


def test_a_failure_that_is_not_the_bug_does_not_count_as_caught() -> None:
    def deadlocks() -> dict[str, Any]:
        from rcu_pgdat import sched

        def body() -> None:
            sched.wait_until(lambda: False, "never")
        return {"t": body}
    target = catch_time.Target("dl", make_program=deadlocks, expect=_uaf)
    trial = catch_time.catch_once(target, "random", seed=1, budget=0.2)
    assert trial is not None and not trial.caught
    assert trial.detail == "not caught (last run: another failure: deadlock)"
    anything = catch_time.catch_once(catch_time.Target("dl", make_program=deadlocks), "random",
                                    seed=1, budget=0.2)
    assert anything is not None and anything.caught and anything.detail == "deadlock"


def test_model_targets_run_in_the_modes_stress_run_has_and_are_caught(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stress_run, "SCHED_MODES", ("stress", "naive"))
    posted = catch_time.Target("posted", run_config={"remover": "posted"})
    assert not posted.can_run("pct") and posted.can_run("stress")
    assert catch_time.catch_once(posted, "pct", 1, 1.0) is None
    trial = catch_time.catch_once(posted, "stress", 1, 40.0)   # ends at the catch
    assert trial is not None and trial.caught and trial.runs == 1
    clean = catch_time.catch_once(catch_time.Target("corrected", run_config={}), "naive", 1, 0.2)
    assert clean is not None and not clean.caught
    assert clean.detail == "not caught (last run: clean)"


def test_model_exploration_is_one_run_sized_on_the_clean_twin(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stress_run, "SCHED_MODES", ("stress", "naive", "dfs"))
    calls: list[stress_run.RunConfig] = []

    def run(cfg: stress_run.RunConfig, **kw: Any) -> Any:
        calls.append(cfg)
        return mock.Mock(violations=[])
    monkeypatch.setattr(stress_run, "run", run)
    target = catch_time.Target("t", run_config={"flavor": "mod:Broken", "nodes": 2})
    trial = catch_time.catch_once(target, "dfs", seed=1, budget=1.0)
    assert trial is not None and not trial.caught and trial.runs == 1
    calibration, explore = calls
    assert (calibration.sched, calibration.flavor, calibration.nodes) == ("random", "qsbr", 2)
    assert (explore.sched, explore.flavor, explore.nodes) == ("dfs", "mod:Broken", 2)
    assert explore.max_schedules >= 1


def test_detection_section_shape_with_a_custom_catalogue(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stress_run, "SCHED_MODES", ("stress", "naive"))
    def always_fails() -> dict[str, Any]:
        def body() -> None:
            raise AssertionError("bug")
        return {"t": body}
    # A flavor that never waits is caught at its first grace period, even by naive threads.
    targets = [catch_time.Target("fails", make_program=always_fails, note="raises"),
               catch_time.Target("posted", run_config={"flavor": NO_WAIT_FLAVOR})]
    sec = catch_time.section(_common.Options(quick=True), targets, trials=1, budget=10.0)
    assert sec.columns == ["target", *catch_time.MODES, "pct x naive", "stress x naive"]
    rows = {r[0]: r for r in sec.rows}
    assert set(rows) == {"fails", "posted"}
    assert all(str(cell).endswith(" s (1)") for cell in rows["fails"][1:6])  # run 1 fails
    assert isinstance(rows["fails"][6], float) and isinstance(rows["fails"][7], float)
    assert rows["posted"][1:4] == [None, None, None]         # no controlled model runs
    assert str(rows["posted"][4]).endswith(" s (1)")          # stress: the first run
    assert sec.data["targets"]["fails"]["how"] == "program"
    assert "* fails (program): raises" in sec.notes
    assert any(n.startswith("Model runs cannot use pct, random, dfs") for n in sec.notes)


def test_a_mode_that_raises_shows_error_and_the_others_still_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stress_run, "SCHED_MODES", ("stress", "naive", "pct"))
    real_run = stress_run.run

    def run(cfg: stress_run.RunConfig, **kw: Any) -> stress_run.StressResult:
        if cfg.sched == "pct":
            raise NotImplementedError("controlled model runs are not built")
        return real_run(cfg, **kw)
    monkeypatch.setattr(stress_run, "run", run)
    got = catch_time.time_to_catch([catch_time.Target("posted", run_config={"remover": "posted"})],
                                  ("pct", "stress"), trials=1, budget=40.0)
    [pct] = got["posted"]["pct"]
    assert pct.error and not pct.caught and pct.detail.startswith("NotImplementedError")
    assert got["posted"]["stress"][0].caught
    assert catch_time._cell([pct], 40.0) == "error"


def test_catch_rate_counts_a_seed_only_when_its_first_violation_is_the_bug(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from rcu_pgdat.check import Kind
    from rcu_pgdat.mutants import MUTANTS
    first = {1: Kind.USE_AFTER_FREE, 2: Kind.DEADLOCK, 3: None}   # caught, wrong, clean
    runs: list[tuple[str, str, int, float]] = []

    def run_one(mutant: Any, mode: str, seed: int, seconds: float) -> Any:
        runs.append((mutant.name, mode, seed, seconds))
        kind = first[seed]
        return mock.Mock(elapsed=0.25 * seed,
                         violations=[] if kind is None else [mock.Mock(kind=kind, subject="")])
    monkeypatch.setattr(catch_rate, "run_one", run_one)
    assert catch_rate.caught_within("posted", range(1, 4), 2.0) == [0.25, None, None]
    assert runs == [("posted", "stress", seed, 2.0) for seed in (1, 2, 3)]
    monkeypatch.setattr(catch_rate, "MUTANTS", {"posted": MUTANTS["posted"]})
    monkeypatch.setattr(catch_rate, "remover_offlines",
                        lambda seeds, seconds: [10 * seed for seed in seeds])
    sec = catch_rate.section(_common.Options(quick=True))       # seeds 1..2
    assert sec.rows == [["posted", "1/2", 0.25]]
    assert sec.data["caught"] == {"posted": [0.25, None]}
    assert sec.data["offlines"] == [10, 20]
    assert "median 15 (min 10, max 20)" in sec.notes[-1]


def test_catch_rate_counts_the_offlines_of_a_clean_stress_run_of_the_defaults(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from stress.config import RunConfig
    seen: list[RunConfig] = []

    def run(cfg: RunConfig, status: Any) -> Any:
        seen.append(cfg)
        return mock.Mock(system=mock.Mock(stats=mock.Mock(offlines=cfg.seed + 1)))
    monkeypatch.setattr(catch_rate, "run", run)
    assert catch_rate.remover_offlines(range(3, 5), 2.0) == [4, 5]
    defaults = RunConfig()
    for cfg, seed in zip(seen, (3, 4), strict=True):
        assert (cfg.sched, cfg.seed, cfg.duration, cfg.keep_going) == ("stress", seed, 2.0, True)
        assert (cfg.remover, cfg.inject, cfg.thread_plan()) == (
            defaults.remover, defaults.inject, defaults.thread_plan())


def test_the_mutant_catalogue_plugs_in_as_model_targets() -> None:
    from rcu_pgdat.mutants import MUTANTS, catalogue_config
    targets = catch_time.model_targets()
    assert [t.name for t in targets] == [f"mutant:{name}" for name in MUTANTS]
    for target, mutant in zip(targets, MUTANTS.values(), strict=True):
        assert target.run_config == catalogue_config(mutant) and target.how() == "model run"
        assert target.expect is not None
        assert target.expect(str(mutant.kinds[0]), mutant.subject)


def test_dfs_mode_explores_until_the_race_shows() -> None:
    race = catch_time.race_targets()[0]
    trial = catch_time.catch_once(race, "dfs", seed=1, budget=5.0)
    assert trial is not None and trial.caught and trial.runs >= 1
    assert trial.detail.startswith("failed AssertionError")


# -- the measuring functions, small ------------------------------------------------------


def test_controlled_overhead_runs_every_mode_to_completion() -> None:
    got = overhead.controlled(sections=5, repeat=1)
    assert set(got) == set(overhead.CTL_MODES)
    for mode, d in got.items():
        assert d["outcomes"] == ["ok"], mode
        assert (d["steps"][0] > 0) == (mode in ("random", "pct"))


def test_throughput_and_latency_runs_are_clean_and_counted() -> None:
    got = throughput.measure(readers=(1,), schemes=("rcu", "rwlock"), duration=0.15, repeat=1,
                             shapes=throughput.SHAPES)
    assert got["violations"] == []
    for shape in throughput.SHAPES:
        rates = got["reads_per_s"][shape]["on"]
        assert set(rates) == {"rcu", "rwlock"}
        # A rate, not a count: a loaded machine may give a 0.15 s run no read at all.
        assert all(len(d[1]) == 1 and d[1][0] >= 0 for d in rates.values())
    cells = latency.gp_latency([(2, 1)], duration=0.3)
    assert cells[0]["violations"] == []
    assert {"rcu:qsbr", "srcu:pgdat"} <= set(cells[0]["latencies"])
    assert sum(len(v) for v in cells[0]["latencies"].values()) > 0


def test_soak_child_reports_its_peak_rss(capsys: pytest.CaptureFixture[str]) -> None:
    assert scale.main(["--child", "0.1"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["peak_kib"] > 0 and got["violations"] == [] and got["reads"] >= 0
    for threads in scale.SCALE_THREADS:
        assert len(stress_run.RunConfig(**scale.scale_config(threads)).thread_plan()) == threads
