"""An RCU written with plain threading only (``plugins/plain_rcu``, no rcu_pgdat import),
checked by ``rcu-pgdat-stress`` as its author wrote it: clean when correct, caught
when broken; ``--intercept``/``--no-intercept`` and ``--instrument`` from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "tests" / "plugins"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(PLUGINS)]),
               PYTHONHASHSEED="0")
    return subprocess.run([sys.executable, "-m", "stress", "--quiet", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


SWEEP = ("--sched", "random", "--seeds", "1-3", "--steps", "3000")


def test_a_correct_plain_threading_rcu_runs_clean(tmp_path: Path) -> None:
    proc = cli("--flavor", "plain_rcu:PlainRCU", *SWEEP, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 runs, 0 failed" in proc.stdout


def test_a_broken_plain_threading_rcu_is_caught(tmp_path: Path) -> None:
    proc = cli("--flavor", "plain_rcu:SleepRCU", *SWEEP, "--instrument", "plain_rcu",
               cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "BUG: " in proc.stdout
    assert "--flavor plain_rcu:SleepRCU" in proc.stdout
    assert "--instrument plain_rcu" in proc.stdout          # the reproduce line keeps it


def test_a_lost_wakeup_in_a_plain_rcu_is_a_deadlock_not_a_pass(tmp_path: Path) -> None:
    """A read_unlock that forgets to notify: the grace period waits on its Condition
    for good. Under a real clock a timeout would end that wait and pass the run."""
    proc = cli("--flavor", "plain_rcu:NoNotifyRCU", *SWEEP, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "BUG: deadlock" in proc.stdout


def test_a_plain_plug_in_is_instrumented_by_default(tmp_path: Path) -> None:
    """A read side that counts itself without its lock races between two plain
    accesses: the default sweep finds it (the plug-in imports nothing of rcu_pgdat, so
    its accesses are schedule points); the same seeds without that default, where the
    only points are its lock and wait, pass it. The correct twin runs clean."""
    sweep = ("--seeds", "1-2")
    caught = cli("--flavor", "plain_rcu:UnlockedCountRCU", *sweep, cwd=tmp_path)
    assert caught.returncode == 1, caught.stdout + caught.stderr
    assert "BUG: " in caught.stdout and "plain_rcu.py:" in caught.stdout
    repro = next(line for line in caught.stdout.splitlines() if line.startswith("reproduce:"))
    assert "--sched portfolio --steps 20000" in repro and "--duration" not in repro
    missed = cli("--flavor", "plain_rcu:UnlockedCountRCU", *sweep, "--no-instrument-plugins",
                 cwd=tmp_path)
    assert missed.returncode == 0, missed.stdout + missed.stderr
    assert "--no-instrument-plugins" not in missed.stdout        # a clean run: no repro line
    clean = cli("--flavor", "plain_rcu:CountingRCU", *sweep, cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr


def test_which_plug_ins_count_as_plain() -> None:
    """Built-in names, annotated modules (they import rcu_pgdat) and modules that do
    not import are not instrumented by default; a plain module is, once."""
    sys.path.insert(0, str(PLUGINS))
    try:
        from stress.plugins import plain_plugin_modules
        assert plain_plugin_modules(("qsbr", "builtin", "plain_rcu:PlainRCU",
                                     "plain_rcu:SleepRCU", "user_rcu:UserRCU",
                                     "unseen_rcu:PhaseRCU", "no_such_module:X")) == \
            ("plain_rcu",)
    finally:
        sys.path.remove(str(PLUGINS))


def test_without_interception_its_condition_wait_is_invisible(tmp_path: Path) -> None:
    """The same correct plug-in with --no-intercept: its Condition wait blocks in the OS
    where the scheduler cannot see it, which is reported as a stall."""
    proc = cli("--flavor", "plain_rcu:PlainRCU", "--sched", "random", "--seed", "1",
               "--steps", "3000", "--stall-timeout", "1", "--no-intercept", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "BUG: stall" in proc.stdout
    assert "--no-intercept" in proc.stdout


def test_bad_instrument_arguments_are_one_line_errors(tmp_path: Path) -> None:
    bad_name = cli("--sched", "random", "--instrument", "not a module", cwd=tmp_path)
    assert bad_name.returncode == 2 and "not a module name" in bad_name.stderr
    missing = cli("--sched", "random", "--steps", "100", "--instrument", "no_such_module",
                  cwd=tmp_path)
    assert missing.returncode == 125
    assert missing.stderr.strip().endswith("No module named 'no_such_module'")
    assert "Traceback" not in missing.stderr
    free = cli("--sched", "stress", "--instrument", "plain_rcu", cwd=tmp_path)
    assert free.returncode == 2 and "need a controlled --sched" in free.stderr


# -- the same through the pytest plugin ---------------------------------------------------------

pytest_plugins = ["pytester"]

PLAIN_TORTURE = """
import sys
sys.path.insert(0, {plugins!r})

from plain_rcu import PlainRCU, SleepRCU
from rcu_pgdat.check import Tracked


class Box(Tracked):
    value: int


def torture(rcu_harness, flavor):
    def setup(h):
        rcu = h.checked(flavor())
        slot = [h.alloc.alloc(Box, "box", value=0)]

        @h.thread("reader")
        def reader():
            while not h.stopping():
                rcu.read_lock()
                box = h.oracles.deref(slot[0], rcu.key)
                assert box.value >= 0
                rcu.read_unlock()

        @h.thread("updater")
        def updater():
            for i in range(1, 4):
                old = slot[0]
                slot[0] = h.alloc.alloc(Box, "box", value=i)
                h.oracles.retire(old, rcu.key)
                rcu.synchronize()
                h.alloc.free(old)
    rcu_harness.run(setup)


def test_correct(rcu_harness):
    torture(rcu_harness, PlainRCU)


def test_broken(rcu_harness):
    torture(rcu_harness, SleepRCU)
"""


def test_the_pytest_plugin_checks_a_plain_threading_rcu(pytester: Any) -> None:
    """No schedule point anywhere in the test or the plug-in: the points are the
    plug-in's intercepted Lock and Condition and the instrumented test module's
    accesses. The correct plug-in passes every seed, the broken one fails with the
    report, a data-race explanation and a reproduce line that keeps the options."""
    pytester.makepyfile(test_plain=PLAIN_TORTURE.format(plugins=str(PLUGINS)))
    result = pytester.runpytest_subprocess(
        "-p", "no:rcu_pgdat", "-p", "rcu_pgdat.pytest_plugin", "-p", "no:cacheprovider",
        "--rcu-seeds", "1-8", "--rcu-steps", "600", "--rcu-instrument", "test_plain")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "test_plain.py::test_broken" in out and "BUG: " in out
    assert "--rcu-instrument test_plain" in out
    assert "conflicting accesses" in out


def test_the_plugin_rejects_a_bad_instrument_option(pytester: Any) -> None:
    pytester.makepyfile(test_nothing="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:rcu_pgdat", "-p", "rcu_pgdat.pytest_plugin", "-p", "no:cacheprovider",
        "--rcu-instrument", "not a module")
    assert result.ret == 4                                   # pytest's usage error
    result.stderr.fnmatch_lines(["*--rcu-instrument: not a module name: 'not a module'*"])
