"""Bisection (``rcu-pgdat-stress bisect``): the verdict of every way a run can end, the
``--step`` guard against misbehaving plug-ins, the helper's refusals and its cleanup,
and whole bisections of a throwaway repository whose history introduces a race."""

from __future__ import annotations

import io
import json
import os
import py_compile
import select
import signal
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import foreground
from stress import bisect, cli

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "tests" / "plugins"

#: A sweep small enough for a test. Checked by hand at every commit of the history below
#: with seeds 1-12: each revision with the race fails most of them (within a few dozen
#: steps), each correct one runs all twelve clean. Which seeds fail is the strategy's
#: business: the tests ask only for one of the swept seeds.
FLAGS = ("--quiet", "--allocators", "1", "--iterators", "1", "--policy-users", "0",
         "--flavor", "myrcu:MyRCU", "--sched", "random", "--seeds", "1-3", "--steps", "2000")


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """git sees no global or system configuration and no repository from outside."""
    for name in [n for n in os.environ if n.startswith("GIT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(PLUGINS)]))


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def new_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    for key, value in (("user.name", "Bisect Test"), ("user.email", "bisect@example.org"),
                       ("commit.gpgsign", "false")):
        git(path, "config", key, value)
    return path


def commit(repo: Path, message: str, files: dict[str, str]) -> str:
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", *files)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


# -- a plug-in RCU and its history --------------------------------------------------------

_MODULE = '''\
"""MyRCU: the test plug-ins' sequence-count RCU with a grace period of its own."""

from rcu_pgdat import sched
from user_rcu import UserRCU


class MyRCU(UserRCU):
    name = "my"
'''

_SYNC_V1 = '''
    def synchronize(self) -> None:
        snapshot = [(rec, rec.seq) for rec in self._readers]
        for rec, seq in snapshot:
            if seq & 1:
                sched.wait_until(lambda r=rec, s=seq: r.seq != s, "my-rcu reader")
'''
_SYNC_V2 = '''
    def _busy(self) -> list:
        """The readers inside a section now, each with the count it must move past."""
        return [(rec, seq) for rec in self._readers if (seq := rec.seq) & 1]

    def synchronize(self) -> None:
        for rec, seq in self._busy():
            sched.wait_until(lambda r=rec, s=seq: r.seq != s, "my-rcu reader")
'''
#: The race: a grace period that starts while exactly one reader is inside a section
#: returns at once, and whatever that reader holds is freed under it.
_RACE = ('        for rec, seq in self._busy():\n',
         '        busy = self._busy()\n'
         '        if len(busy) == 1:          # a lone reader: nobody to race with, let it be\n'
         '            return\n'
         '        for rec, seq in busy:\n')
_COUNT = '''
    def readers(self) -> int:
        """How many threads have read through this flavor."""
        return len(self._readers)
'''


def history() -> list[tuple[str, str]]:
    """``(subject, myrcu.py)`` per commit, oldest first: two good, the race, a commit
    that does not import, then four that build on the race."""
    v1 = _MODULE + _SYNC_V1
    v2 = _MODULE + _SYNC_V2
    race = v2.replace(*_RACE)
    counted = race + _COUNT
    documented = counted.replace('    def _busy', '    # A grace period waits for these.\n'
                                 '    def _busy')
    renamed = documented.replace("_busy", "_inside")
    return [
        ("myrcu: a grace period of its own", v1),
        ("myrcu: factor the reader snapshot out of synchronize()", v2),
        ("myrcu: do not wait for a lone reader", race),
        ("myrcu: WIP reader count", counted.replace("def readers(self) -> int:",
                                                     "def readers(self) -> int")),
        ("myrcu: reader count", counted),
        ("myrcu: say what _busy is for", documented),
        ("myrcu: rename _busy to _inside", renamed),
        ("myrcu: say which flavor this is", renamed.replace('name = "my"', 'name = "my-rcu"')),
    ]


@pytest.fixture
def race_repo(tmp_path: Path) -> tuple[Path, list[str]]:
    repo = new_repo(tmp_path / "plugin")
    shas = [commit(repo, subject, {"myrcu.py": text}) for subject, text in history()]
    return repo, shas


# -- the verdict of every ending ----------------------------------------------------------


@pytest.mark.parametrize("status, code, why", [
    (0, 0, "no violation"),
    (1, 1, "violation"),
    (125, 125, "does not load"),
    (2, 125, "flags cannot run"),
    (130, 125, "interrupted"),
    (-signal.SIGINT, 125, "interrupted"),
    (-signal.SIGSEGV, 1, "SIGSEGV"),
    (-signal.SIGABRT, 1, "SIGABRT"),
    (-signal.SIGBUS, 1, "SIGBUS"),
    (-signal.SIGKILL, 125, "SIGKILL"),
    (-signal.SIGTERM, 125, "SIGTERM"),
    (126, 125, "could not be run"),
    (127, 125, "could not be run"),
    (3, 1, "ended the process"),
    (139, 1, "ended the process"),
    (200, 1, "ended the process"),
])
def test_verdict_of_each_ending(status: int, code: int, why: str) -> None:
    got, reason = bisect.verdict(status)
    assert got == code and why in reason, reason


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-70, max_value=400))
def test_a_step_never_answers_above_127(status: int) -> None:
    code, reason = bisect.verdict(status)
    assert code in (bisect.GOOD, bisect.BAD, bisect.SKIP) and reason
    if status in (0, 1, 125):
        assert code == status                  # what the CLI says passes through


def test_verdicts_are_the_cli_exit_codes() -> None:
    assert (bisect.GOOD, bisect.BAD, bisect.SKIP, bisect.ABORT) == (
        cli.EXIT_OK, cli.EXIT_VIOLATION, cli.EXIT_SKIP, cli.EXIT_INTERRUPT)


@pytest.mark.parametrize("outcome, code", [
    (SystemExit(200), 125), (SystemExit(-1), 125), (SystemExit(0), 0), (SystemExit(None), 0),
    (SystemExit("message"), 1), (SystemExit(7), 7), (300, 125), (130, 130), (1, 1),
])
def test_cli_never_exits_above_127_but_130(monkeypatch: pytest.MonkeyPatch, outcome: Any,
                                           code: int) -> None:
    def fake_main(argv: list[str]) -> int:
        if isinstance(outcome, BaseException):
            raise outcome
        return int(outcome)
    module = types.ModuleType("fake_subcommand")
    module.main = fake_main                           # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_subcommand", module)
    monkeypatch.setitem(cli.SUBCOMMANDS, "fake", "fake_subcommand")
    assert cli.main(["fake"]) == code


def test_help_still_exits_0() -> None:
    with pytest.raises(SystemExit) as raised:          # argparse's own exit, untouched
        cli.build_parser().parse_args(["--help"])
    assert raised.value.code == 0
    assert cli.main(["--help"]) == 0
    assert bisect.main(["--help"]) == 0


# -- the step guard against a plug-in that misbehaves -------------------------------------

_MISBEHAVING = '''\
import os, signal, sys, threading
from user_rcu import UserRCU


class Plugin(UserRCU):
    """UserRCU, doing ``ACTION`` at iterator-0's first read_lock()."""

    def read_lock(self):
        super().read_lock()
        if threading.current_thread().name == "iterator-0":
            ACTION


class NamedBadly(UserRCU):
    @property
    def name(self):
        sys.exit(200)            # while the harness builds the flavor (main thread)
'''

_STEP_FLAGS = ("--quiet", "--scenario", "TINY", "--sched", "random", "--steps", "2000")


def _step_cmd(work_tree: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "stress", "bisect", "--step", "--repo", str(work_tree),
            "--", *_STEP_FLAGS, *flags]


def step(work_tree: Path, *flags: str) -> subprocess.Popen[str]:
    """``rcu-pgdat-stress bisect --step`` as git bisect run starts it, output merged."""
    return subprocess.Popen(_step_cmd(work_tree, *flags), cwd=work_tree,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("flavor, action, code, why", [
    ("Plugin", "pass", 0, "no violation"),
    ("Plugin", "raise RuntimeError('boom')", 1, "violation"),
    ("Plugin", "sys.exit(200)", 1, "violation"),
    ("Plugin", "os._exit(200)", 1, "violation"),      # an exception while the CLI runs
    ("Plugin", "os.kill(os.getpid(), signal.SIGSEGV)", 1, "killed by SIGSEGV"),
    ("NamedBadly", "pass", 125, "does not load (or an internal error)"),
])
def test_step_turns_every_ending_into_a_verdict(tmp_path: Path, flavor: str, action: str,
                                                code: int, why: str) -> None:
    (tmp_path / "misbehave.py").write_text(_MISBEHAVING.replace("ACTION", action))
    proc = step(tmp_path, "--flavor", f"misbehave:{flavor}")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == code, out
    verdict_line = out.strip().splitlines()[-1]
    assert f": {bisect._WORD[code]} (" in verdict_line and why in verdict_line, out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["misbehave.py"]   # nothing left


def test_step_skips_a_plugin_that_does_not_import(tmp_path: Path) -> None:
    (tmp_path / "myrcu.py").write_text("def broken(:\n")
    proc = step(tmp_path, "--flavor", "myrcu:MyRCU")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 125 and "SyntaxError" in out, out


def test_step_interrupted_aborts_the_bisection(tmp_path: Path) -> None:
    """Ctrl-C reaches the step while its run is inside the plug-in: exit 130.

    The plug-in says on the pipe that it is inside ``read_lock()`` and then blocks where
    no scheduler sees it (no interception) with a hang bound longer than the test's:
    only the signal can end the run, however late it arrives."""
    action = "print('plug-in: inside read_lock', flush=True); threading.Event().wait()"
    (tmp_path / "misbehave.py").write_text(_MISBEHAVING.replace("ACTION", action))
    child = foreground.start(_step_cmd(tmp_path, "--flavor", "misbehave:Plugin",
                                       "--no-intercept", "--stall-timeout", "600"),
                             cwd=tmp_path, merge=True)
    child.wait_for(lambda line: "plug-in: inside read_lock" in line, stream="stdout")
    child.proc.send_signal(signal.SIGINT)    # Ctrl-C, delivered here to the step alone
    out, _ = child.finish()
    assert child.proc.returncode == 130, out
    assert "interrupted" in out


def test_each_step_compiles_the_checked_out_source(tmp_path: Path) -> None:
    """git checks out two revisions of a module with the same size in the same second;
    Python would trust the byte code left by the first (it checks whole-second mtime and
    size). The step's private cache judges the second; a plain run does not."""
    module = tmp_path / "toggle.py"
    source = "from user_rcu import NoProtocol, UserRCU\nMyRCU = NoProtocol if {} else UserRCU\n"
    module.write_text(source.format(1))                 # broken: no read_lock at all
    os.utime(module, (1_700_000_000, 1_700_000_000))
    py_compile.compile(str(module), doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    module.write_text(source.format(0))                 # fixed, same size, same second
    os.utime(module, (1_700_000_000, 1_700_000_000))
    flags = ["--quiet", "--scenario", "TINY", "--flavor", "toggle:MyRCU", "--sched",
             "random", "--steps", "300"]
    judged = bisect.run_step(str(tmp_path), flags, harness_root=str(ROOT), sink=io.StringIO())
    assert judged.code == bisect.GOOD, judged.output
    plain = subprocess.run([sys.executable, "-m", "stress", *flags], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60, check=False)
    assert plain.returncode == 125 and "missing read_lock" in plain.stderr   # stale


# -- the helper's refusals and its cleanup ------------------------------------------------


@pytest.fixture
def small_repo(tmp_path: Path) -> tuple[Path, list[str]]:
    repo = new_repo(tmp_path / "small")
    return repo, [commit(repo, f"c{i}", {"myrcu.py": f"# {i}\n"}) for i in range(3)]


def helper(repo: Path, *args: str, flags: tuple[str, ...] = FLAGS) -> int:
    return bisect.main([*args, "--repo", str(repo), "--", *flags])


def test_refuses_a_directory_that_is_not_a_repository(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert helper(tmp_path, "--good", "HEAD~1", "--bad", "HEAD") == 2
    assert "not inside a git work tree" in capsys.readouterr().err


@pytest.mark.parametrize("args, needle", [
    (("--good", "nosuch", "--bad", "HEAD"), "--good 'nosuch': unknown revision"),
    (("--good", "HEAD~2", "--bad", "v9"), "--bad 'v9': unknown revision"),
    (("--good", "HEAD", "--bad", "main"), "are the same commit"),
    (("--good", "HEAD", "--bad", "HEAD~2"), "are they swapped"),
    (("--good", "HEAD~2"), "give both --good REV and --bad REV"),
])
def test_refuses_bad_revisions(small_repo: tuple[Path, list[str]], args: tuple[str, ...],
                               needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    repo, _ = small_repo
    assert helper(repo, *args) == 2
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize("flags, needle", [
    ((), "give the stress flags after '--'"),
    (("--flavor", "myrcu:MyRCU"), "controlled --sched"),
    (("--sched", "random", "--trace-out", "x.json"), "leave out --replay, --trace-out"),
    (("--sched", "random", "--nodes", "lots"), "stress flags: argument --nodes"),
])
def test_refuses_unusable_stress_flags(small_repo: tuple[Path, list[str]],
                                       flags: tuple[str, ...], needle: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    repo, _ = small_repo
    assert helper(repo, "--good", "HEAD~2", "--bad", "HEAD", flags=flags) == 2
    assert needle in capsys.readouterr().err


def test_refuses_a_dirty_work_tree_and_a_running_bisection(
        small_repo: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    repo, _ = small_repo
    (repo / "myrcu.py").write_text("# edited\n")
    assert helper(repo, "--good", "HEAD~2", "--bad", "HEAD") == 2
    assert "uncommitted changes (myrcu.py)" in capsys.readouterr().err
    git(repo, "checkout", "-q", "--", "myrcu.py")
    git(repo, "bisect", "start")
    try:
        assert helper(repo, "--good", "HEAD~2", "--bad", "HEAD") == 2
        assert "a bisection is already running" in capsys.readouterr().err
        git(repo, "bisect", "log")                    # and it was left alone
    finally:
        git(repo, "bisect", "reset")


def test_refuses_a_trace_inside_the_work_tree(small_repo: tuple[Path, list[str]],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    repo, _ = small_repo
    assert helper(repo, "--good", "HEAD~2", "--bad", "HEAD", "--trace-out",
                  str(repo / "t.json")) == 2
    assert "inside the work tree" in capsys.readouterr().err


def assert_back_where_it_was(repo: Path) -> None:
    assert git(repo, "branch", "--show-current") == "main"
    assert git(repo, "status", "--porcelain", "--ignored") == ""
    assert subprocess.run(["git", "-C", str(repo), "bisect", "log"], capture_output=True,
                          check=False).returncode != 0         # no bisection left running


def fake_steps(monkeypatch: pytest.MonkeyPatch, verdicts: dict[str, int]) -> list[str]:
    """Judge by the checked-out file instead of running: ``verdicts[content]``."""
    judged: list[str] = []

    def run_step(work_tree: str, flags: Any, **_: Any) -> bisect.Judged:
        content = (Path(work_tree) / "myrcu.py").read_text()
        judged.append(content)
        return bisect.Judged(verdicts[content], "fake", verdicts[content], "")
    monkeypatch.setattr(bisect, "run_step", run_step)
    return judged


@pytest.mark.parametrize("verdicts, needle, ends", [
    ({"# 0\n": 0, "# 2\n": 0}, "is not bad with these flags", ["# 2\n"]),
    ({"# 0\n": 1, "# 2\n": 1}, "is not good with these flags", ["# 2\n", "# 0\n"]),
    ({"# 0\n": 0, "# 2\n": 125}, "is not bad with these flags", ["# 2\n"]),
])
def test_ends_are_judged_before_git_is_asked(small_repo: tuple[Path, list[str]],
                                             monkeypatch: pytest.MonkeyPatch,
                                             verdicts: dict[str, int], needle: str,
                                             ends: list[str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A budget that misses the bug at --bad would make git blame --bad; a bug older
    than --good would make it blame a later commit: both stop before git is asked."""
    repo, _ = small_repo
    judged = fake_steps(monkeypatch, verdicts)
    assert helper(repo, "--good", "HEAD~2", "--bad", "HEAD") == 1
    assert needle in capsys.readouterr().out
    assert judged == ends                             # --bad first, then --good, no more
    assert_back_where_it_was(repo)


@pytest.mark.parametrize("error, code", [(KeyboardInterrupt(), 130), (OSError("gone"), 125)])
def test_the_session_is_reset_whatever_happens(small_repo: tuple[Path, list[str]],
                                               monkeypatch: pytest.MonkeyPatch,
                                               error: BaseException, code: int) -> None:
    repo, _ = small_repo
    fake_steps(monkeypatch, {"# 0\n": 0, "# 2\n": 1})

    def stream(cmd: list[str], **_: Any) -> tuple[int, str]:
        assert cmd[:3] == ["git", "bisect", "run"]
        assert git(repo, "bisect", "log")             # inside the session
        raise error
    monkeypatch.setattr(bisect, "_stream", stream)
    assert helper(repo, "--good", "HEAD~2", "--bad", "HEAD") == code
    assert_back_where_it_was(repo)


def test_an_internal_error_still_resets(small_repo: tuple[Path, list[str]],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    repo, _ = small_repo
    fake_steps(monkeypatch, {"# 0\n": 0, "# 2\n": 1})
    monkeypatch.setattr(bisect, "_read_log", lambda top: 1 / 0)
    with pytest.raises(ZeroDivisionError):           # the CLI turns it into 125
        helper(repo, "--good", "HEAD~2", "--bad", "HEAD")
    assert_back_where_it_was(repo)


# -- whole bisections ---------------------------------------------------------------------


def test_helper_names_the_commit_that_introduced_the_race(
        race_repo: tuple[Path, list[str]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    repo, shas = race_repo
    trace = tmp_path / "culprit.trace.json"
    assert helper(repo, "--good", shas[0], "--bad", "main", "--trace-out", str(trace)) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "--- Bisection: first bad commit"
    assert lines[1] == f"{shas[2]} myrcu: do not wait for a lone reader"
    broken = git(repo, "rev-parse", "--short", shas[3])
    assert f"skipped: {broken} myrcu: WIP reader count" in lines[2]    # 125, not bad
    assert lines[3].startswith("  BUG: gp-too-short in rcu:my")
    assert f"trace: {trace}" in lines
    doc = json.loads(trace.read_text())
    assert doc["format"] == "rcu-pgdat-schedule" and doc["meta"]["params"]["seed"] in (1, 2, 3)
    assert f"git checkout --detach {shas[2][:12]} && rcu-pgdat-stress --replay {trace}" in out
    assert "replayed here: the same violation" in out
    assert lines[-1] == "--- End of bisection: FOUND"
    assert_back_where_it_was(repo)


def test_the_documented_git_bisect_run_line(race_repo: tuple[Path, list[str]]) -> None:
    """docs/bisect.md's one line, with ``python -m stress`` for the console script."""
    repo, shas = race_repo
    git(repo, "bisect", "start", "main", shas[0])
    try:
        run = subprocess.run(["git", "-C", str(repo), "bisect", "run", sys.executable, "-m",
                              "stress", "bisect", "--step", "--", *FLAGS],
                             capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        log = git(repo, "bisect", "log")
    finally:
        git(repo, "bisect", "reset")
    assert f"# first bad commit: [{shas[2]}] myrcu: do not wait for a lone reader" in log
    assert f"# skip: [{shas[3]}]" in log
    assert_back_where_it_was(repo)


def test_stream_stops_the_whole_process_group(tmp_path: Path) -> None:
    """Ctrl-C in the helper while ``git bisect run`` runs a step that runs a child: the
    group dies, grandchild included, before the exception reaches the reset."""
    grandchild: list[int] = []

    class Sink(io.StringIO):
        def write(self, text: str) -> int:
            if text.endswith("started\n"):
                grandchild.append(os.pidfd_open(int(text.split()[0])))
                raise KeyboardInterrupt       # as if Ctrl-C arrived now
            return super().write(text)
    script = ("import subprocess, sys; child = subprocess.Popen([sys.executable, '-c', "
              "'import threading; threading.Event().wait()']); "
              "print(child.pid, 'started', flush=True); child.wait()")
    with pytest.raises(KeyboardInterrupt):
        bisect._stream([sys.executable, "-c", script], cwd=str(tmp_path), env=None,
                       sink=Sink(), own_group=True)
    (pidfd,) = grandchild
    try:
        readable, _, _ = select.select([pidfd], [], [], 30)     # readable once it exited
        assert readable == [pidfd]
    finally:
        os.close(pidfd)
