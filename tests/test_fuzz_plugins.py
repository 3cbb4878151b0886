"""Broken plug-ins, fuzzed: a user's RCU that does not import, lacks a method, raises,
exits or blocks, at import, while it is built or in the middle of a run.

Each gets its documented exit code (README, "Exit codes") and one line saying why when
the run cannot be made: 125 for what breaks before the run (import, build, protocol),
1 for what breaks inside it (a ``thread-exception``, or a deadlock, livelock or stall
for a wait that never ends). Hypothesis draws the plug-ins and runs them in this
process; what must not happen here (``os._exit``, a thread blocked for good out of the
scheduler's sight) runs in a child process.
"""

from __future__ import annotations

import importlib
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from fuzz_support import DEFAULT_FUZZ, NIGHTLY_FUZZ, PLUGINS, Ending, run_cli, run_cli_process
from hypothesis import event, given, settings
from hypothesis import strategies as st

#: Where a plug-in misbehaves: before the run (loading) or inside it (its methods).
LOAD_TIME = ("import", "build", "name")
IN_RUN = ("read_lock", "read_unlock", "synchronize", "register_thread")
#: How it misbehaves (``block`` waits through the scheduler for what never happens).
IN_PROCESS = {
    "raise": "raise RuntimeError('plug-in bug')",
    "keyboard-interrupt": "raise KeyboardInterrupt",
    "sys.exit": "sys.exit(3)",
    "sys.exit-text": "sys.exit('plug-in gives up')",
    "block": "sched.wait_until(lambda: False, 'plug-in waits for nothing')",
}
#: Only in a child: the process ends, or a thread blocks where no scheduler sees it.
IN_CHILD = {
    "os._exit": "os._exit(200)",
    "hang": "_GATE.acquire()",
}
#: A controlled run long enough for every method above to be called.
RUN = ["--scenario", "TINY", "--fake-writers", "1", "--sched", "random", "--seed", "2",
       "--steps", "3000", "--quiet"]
#: What the fuzzing varies besides the plug-in: the mode (free-running too, where a
#: scheduler wait is a real one: not drawn with ``block``) and the seed.
MODES = ["random", "pct", "stress"]

_TEMPLATE = '''\
import _thread, os, sys, threading
from rcu_pgdat import sched
from user_rcu import UserRCU

_GATE = _thread.allocate_lock()           # held for good: a wait no scheduler sees
_GATE.acquire()
{at_import}

class Plugin(UserRCU):
    name = "fuzzed"
{body}
'''


@dataclass(frozen=True)
class Broken:
    """One broken plug-in: what breaks, where, and how."""

    where: str
    how: str
    action: str

    def source(self) -> str:
        """The plug-in module's text."""
        body = "    pass"
        at_import = self.action if self.where == "import" else ""
        if self.where == "build":
            body = f"    def __init__(self):\n        super().__init__()\n        {self.action}"
        elif self.where == "name":
            body = f"    @property\n    def name(self):\n        {self.action}"
        elif self.where in ("missing", "not-callable"):
            body = "    synchronize = None" if self.where == "missing" else "    read_lock = 3"
        elif self.where in IN_RUN:
            args = "self, *args"
            first = "iterator-0" if self.where.startswith("read") else ""
            guard = (f"if threading.current_thread().name == {first!r}: "
                     if first else "")
            body = (f"    def {self.where}({args}):\n"
                    f"        result = super().{self.where}(*args)\n"
                    f"        {guard}{self.action}\n"
                    f"        return result")
        return _TEMPLATE.format(at_import=at_import, body=body)

    def expected(self) -> tuple[int, str]:
        """The exit code and what the report or the refusal must say."""
        if self.where in ("missing", "not-callable"):
            return 125, "does not implement the RCU protocol"
        if self.where == "import":
            return 125, "does not import"
        if self.where in ("build", "name"):
            return 125, "could not be built"
        if self.how in ("block", "hang"):
            return 1, "BUG: "
        return 1, "BUG: thread-exception"


_names = itertools.count()


def _write(tmp: Path, plugin: Broken) -> str:
    """The plug-in as a fresh module in ``tmp``; its ``--flavor`` spec."""
    name = f"fuzzed_plugin_{next(_names)}"
    (tmp / f"{name}.py").write_text(plugin.source())
    importlib.invalidate_caches()
    return f"{name}:Plugin"


def broken_plugins(actions: dict[str, str]) -> st.SearchStrategy[Broken]:
    """Plug-ins broken in one place, one way (an import or a constructor that waits for
    ever hangs whoever imports it, harness or not: not drawn)."""
    wheres = st.sampled_from([*LOAD_TIME, *IN_RUN, "missing", "not-callable"])
    return st.builds(lambda where, how: Broken(where, how, actions[how]),
                     wheres, st.sampled_from(sorted(actions))).filter(
        lambda b: not (b.where in LOAD_TIME and b.how == "block"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(PLUGINS))
    return tmp_path


def _check(ending: Ending, plugin: Broken) -> None:
    code, needle = plugin.expected()
    ending.check()
    assert ending.code == code, f"{plugin}\n{plugin.source()}\n{ending}"
    assert needle in (ending.out if code == 1 else ending.err), f"{plugin}\n{ending}"


def _fuzz_in_process(workdir: Path, plugin: Broken, mode: str, seed: int) -> None:
    if mode == "stress" and plugin.how == "block":
        mode = "random"              # free-running, the wait would poll on after the run
    argv = [*RUN, "--sched", mode, "--seed", str(seed), "--duration", "10",
            "--flavor", _write(workdir, plugin)]
    try:
        ending = run_cli(argv)
        event(f"{plugin.where}, {plugin.how}: exit {ending.code}")
        _check(ending, plugin)
    finally:
        for name in [n for n in sys.modules if n.startswith("fuzzed_plugin_")]:
            del sys.modules[name]


@settings(DEFAULT_FUZZ, max_examples=45)
@given(plugin=broken_plugins(IN_PROCESS), mode=st.sampled_from(MODES))
def test_broken_plugins_get_their_exit_code(workdir: Path, plugin: Broken,
                                            mode: str) -> None:
    _fuzz_in_process(workdir, plugin, mode, 2)


@pytest.mark.slow
@NIGHTLY_FUZZ
@given(plugin=broken_plugins(IN_PROCESS), mode=st.sampled_from(MODES),
       seed=st.integers(0, 10**6))
def test_broken_plugins_get_their_exit_code_nightly(workdir: Path, plugin: Broken,
                                                    mode: str, seed: int) -> None:
    _fuzz_in_process(workdir, plugin, mode, seed)


@pytest.mark.parametrize("where", [*LOAD_TIME, "read_lock", "synchronize"])
def test_a_plugin_calling_os_exit_never_ends_the_process(tmp_path: Path, where: str) -> None:
    """``os._exit(200)``: 125 before the run, a violation inside it; never 200."""
    plugin = Broken(where, "os._exit", IN_CHILD["os._exit"])
    ending = run_cli_process([*RUN, "--flavor", _write(tmp_path, plugin)], tmp_path)
    _check(ending, plugin)
    assert "os._exit(200)" in ending.out + ending.err


@pytest.mark.parametrize("mode", [["--sched", "random"], ["--sched", "stress"]])
def test_a_synchronize_that_never_returns_is_a_stall_not_a_hang(tmp_path: Path,
                                                                mode: list[str]) -> None:
    """Blocked on a C lock, out of any scheduler's sight: the run still ends, with a
    stall report naming the remover's wait, after --stall-timeout."""
    plugin = Broken("synchronize", "hang", IN_CHILD["hang"])
    argv = [*RUN, *mode, "--duration", "30", "--stall-timeout", "2",
            "--flavor", _write(tmp_path, plugin)]
    ending = run_cli_process(argv, tmp_path)
    _check(ending, plugin)
    assert "stall" in ending.out or "hang" in ending.out, ending


def test_a_plugin_calling_sys_exit_while_loaded_exits_125_not_its_code(
        workdir: Path) -> None:
    """``sys.exit(0)`` at import must not pass for a clean run (nor 130 abort a
    bisection)."""
    for code in ("0", "130", "'bye'"):
        plugin = Broken("import", "sys.exit", f"sys.exit({code})")
        ending = run_cli([*RUN, "--flavor", _write(workdir, plugin)])
        _check(ending, plugin)
    for where in ("build", "name"):
        plugin = Broken(where, "sys.exit", "sys.exit(0)")
        _check(run_cli([*RUN, "--flavor", _write(workdir, plugin)]), plugin)


def test_the_template_itself_is_a_correct_plugin(workdir: Path) -> None:
    """Without a misbehaviour the generated plug-in runs clean: what the fuzzing finds
    is the misbehaviour, not the template."""
    spec = _write(workdir, Broken("read_lock", "none", "pass"))
    assert run_cli([*RUN, "--flavor", spec]).check().code == 0
    del sys.modules[spec.partition(":")[0]]
