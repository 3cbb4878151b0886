"""End-to-end tests of ``rcu-pgdat-stress``: the CLI run as a subprocess."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import foreground

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = Path(__file__).resolve().parent / "plugins"


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m stress ARGS`` with the test plug-ins importable."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(PLUGINS)]))
    return subprocess.run([sys.executable, "-m", "stress", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


SHORT = ("--duration", "1", "--quiet")


def test_default_run_succeeds_and_says_so() -> None:
    proc = cli("--duration", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert last_line(proc.stdout) == "--- End of test: SUCCESS"
    assert "rcu-pgdat-stress: scenario=DEFAULT" in proc.stderr      # parameters echoed
    assert "Reader Pipe (rcu:qsbr)" in proc.stdout
    assert "Reader Batch (srcu:pgdat)" in proc.stdout


@pytest.mark.parametrize("scheme", ["rcu", "rwlock", "reuse"])
@pytest.mark.parametrize("flavor", ["qsbr", "memb"])
def test_each_scheme_and_flavor_is_clean(scheme: str, flavor: str) -> None:
    proc = cli(*SHORT, "--scheme", scheme, "--flavor", flavor, "--seed", "7")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert last_line(proc.stdout) == "--- End of test: SUCCESS"


def test_posted_rfc_is_found_broken_with_a_reproduce_line() -> None:
    # A run ends at its first violation: the long duration costs time only on a miss
    # (a loaded machine, or a free-threaded interpreter, does fewer cycles a second).
    proc = cli("--duration", "40", "--quiet", "--remover", "posted", timeout=100)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "BUG: use-after-free" in proc.stdout
    assert "srcu:pgdat (sleepable)" in proc.stdout          # the sleeper was the victim
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "--- End of test: FAILURE"
    assert lines[-2].startswith("reproduce: rcu-pgdat-stress ")
    # The reproduce line reproduces: run it again (through python -m stress).
    again = cli(*shlex.split(lines[-2])[2:], "--quiet", timeout=100)
    assert again.returncode == 1, again.stdout
    assert "BUG: use-after-free" in again.stdout


@pytest.mark.parametrize("args, needle", [
    (["--no-such-flag"], "unrecognized arguments"),
    (["--nodes", "0"], "--nodes must be 1..1024, got 0"),
    (["--nodes", "4", "--cpus", "2"], "must be at least --nodes"),
    (["--duration", "-1"], "--duration: must be a positive number"),
    (["--scheme", "spinlock"], "invalid choice"),
    (["--scenario", "NOPE"], "unknown scenario"),
    (["--sleepers", "100"], "--sleepers must be 0..64"),
    (["--allocators", "0", "--iterators", "0", "--sleepers", "0", "--policy-users", "0"],
     "no reader threads"),
])
def test_bad_usage_is_one_line_and_exit_2(args: list[str], needle: str) -> None:
    proc = cli(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "Traceback" not in proc.stderr


@pytest.mark.parametrize("spec, needle", [
    ("does_not_import:Anything", "does not import"),
    ("user_rcu:Missing", "has no attribute"),
    ("user_rcu:NoProtocol", "missing read_lock"),
    ("user_rcu:broken_factory", "could not be built"),
    ("not-a-spec", "unknown flavor"),
])
def test_plugin_that_cannot_be_loaded_exits_125(spec: str, needle: str) -> None:
    proc = cli(*SHORT, "--flavor", spec)
    assert proc.returncode == 125, proc.stdout + proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr


def test_good_plugin_by_import_path_is_clean() -> None:
    proc = cli("--duration", "2", "--quiet", "--flavor", "user_rcu:UserRCU")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Reader Pipe (rcu:user)" in proc.stdout


def test_broken_plugin_by_import_path_is_caught() -> None:
    proc = cli("--duration", "10", "--quiet", "--flavor", "user_rcu:NoWaitRCU")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "BUG: " in proc.stdout and "--flavor user_rcu:NoWaitRCU" in proc.stdout


def test_json_report_schema(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = cli(*SHORT, "--json", str(out))
    assert proc.returncode == 0
    doc = json.loads(out.read_text())
    assert doc["format"] == "rcu-pgdat-stress-result" and doc["version"] == 1
    assert doc["verdict"] == "SUCCESS" and doc["exit_code"] == 0
    assert set(doc) >= {"params", "elapsed", "threads", "hotplug", "grace_periods", "oracles",
                        "section_lengths", "memory", "violations", "stall", "reproduce"}
    assert doc["params"]["scheme"] == "rcu" and doc["params"]["seed"] == 1
    assert set(doc["threads"]) == {"allocator", "iterator", "sleeper", "policy",
                                   "fake-writer", "remover"}
    pipe = doc["oracles"]["rcu:qsbr"]["reader_pipe"]
    assert len(pipe) == 11 and sum(pipe) > 0
    assert doc["violations"] == [] and doc["reproduce"] is None


def test_json_to_stdout_keeps_summary_on_stderr() -> None:
    proc = cli(*SHORT, "--remover", "posted", "--duration", "10", "--json", "-")
    doc = json.loads(proc.stdout)
    assert doc["verdict"] == "FAILURE" and doc["exit_code"] == 1 == proc.returncode
    assert doc["violations"][0]["kind"] == "use-after-free"
    assert doc["reproduce"].startswith("rcu-pgdat-stress ")
    assert "--- End of test: FAILURE" in proc.stderr


def test_list_scenarios_and_flags_override_them(tmp_path: Path) -> None:
    proc = cli("--list-scenarios")
    assert proc.returncode == 0
    for name in ("DEFAULT", "TREE01", "SRCU-N", "RWLOCK", "REUSE", "SEQCOUNT"):
        assert name in proc.stdout
    out = tmp_path / "r.json"
    proc = cli(*SHORT, "--scenario", "RWLOCK", "--sleepers", "2", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    params = json.loads(out.read_text())["params"]
    assert params["scheme"] == "rwlock" and params["sleepers"] == 2
    assert params["scenario"] == "RWLOCK"


def test_ctrl_c_prints_partial_summary_and_exits_130() -> None:
    """Ctrl-C once the workers run (the first status line says so): a partial summary,
    exit 130. The run is as long as the test's bound: only the signal can end it."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = foreground.start([sys.executable, "-m", "stress", "--duration", "600"],
                             cwd=ROOT, env=env)
    child.wait_for(lambda line: "offline/online=" in line)     # a status line: running
    child.proc.send_signal(signal.SIGINT)
    out, err = child.finish()
    assert child.proc.returncode == 130, out + err
    assert "--- Summary after" in out
    assert last_line(out) == "--- End of test: INTERRUPTED"


def test_stuck_reader_is_reported_as_a_stall() -> None:
    proc = cli("--duration", "30", "--quiet", "--stall-timeout", "1", "--sleepers", "0",
               "--flavor", "user_rcu:StuckReaderRCU")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "BUG: stall of the remover (writer stall)" in proc.stdout
    # What was exceeded, what progress the run would have shown, how far the remover got.
    # The SRCU domain's fake writers go on: the RCU flavor's pending grace period is
    # the stall, as the kernel's RCU stall warning has it.
    assert "over the configured limit (--stall-timeout 1): no remover step and no grace " \
           "period of rcu:user ended, with some pending" in proc.stdout
    # Every thread starts at once: the remover may finish a cycle before the reader sticks.
    assert re.search(r"Remover so far: \d+ offline/online operation\(s\) finished"
                     r"( \([^)]*\))?; now in phase '(off|on)line node", proc.stdout)
    assert "thread iterator-0:" in proc.stdout         # every thread's stack is shown
    assert "running=['iterator-0']" in proc.stdout     # who holds the remover up
    assert last_line(proc.stdout) == "--- End of test: FAILURE"


def test_plugin_calling_sys_exit_in_a_worker_is_a_violation() -> None:
    proc = cli("--duration", "5", "--quiet", "--flavor", "user_rcu:ExitingRCU")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "BUG: thread-exception" in proc.stdout and "SystemExit" in proc.stdout


@pytest.mark.parametrize("flavor, code, last", [
    ("qsbr", 0, "qsbr-torture:--- End of test: SUCCESS"),
    ("user_rcu:NoWaitRCU", 1, "reproduce: rcu-pgdat-stress torture user_rcu:NoWaitRCU"),
])
def test_torture_subcommand_judges_a_flavor(flavor: str, code: int, last: str) -> None:
    proc = cli("torture", flavor, "--duration", "0.3", "--readers", "2", "--writers", "1")
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert last_line(proc.stdout).startswith(last)


@pytest.mark.parametrize("args, words", [
    (["bogus"], "unknown flavor 'bogus': qsbr, memb or MODULE:ATTR"),
    (["qsbr", "--readers", "0"], "--duration must be positive, --readers and --writers at "
                                 "least 1"),
])
def test_torture_bad_usage_is_one_line_and_exit_2(args: list[str], words: str) -> None:
    proc = cli("torture", *args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == f"rcu-pgdat-stress torture: error: {words}"


def test_importing_the_plugin_loader_leaves_sys_path_alone(tmp_path: Path) -> None:
    """Only loading a MODULE:ATTR plug-in puts the current directory on sys.path."""
    (tmp_path / "here_rcu.py").write_text("from user_rcu import UserRCU as Here\n")
    code = ("import sys\n"
            "sys.path[:] = [d for d in sys.path if d not in ('', '.')]\n"
            "import stress.plugins as p\n"
            "print('' in sys.path)\n"
            "p.load_flavor('qsbr')\n"
            "print('' in sys.path)\n"
            "print(type(p.load_flavor('here_rcu:Here')).__name__, '' in sys.path)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(PLUGINS)]))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False", "UserRCU", "True"]
