"""``rcu-pgdat-stress bisect``: find the commit that broke a plug-in RCU (or the model).

Two modes, both built on ``git bisect`` itself::

    rcu-pgdat-stress bisect --good REV --bad REV [--repo DIR] [--trace-out FILE] -- FLAGS
    rcu-pgdat-stress bisect --step [--repo DIR] -- FLAGS

The first drives a whole bisection (``git bisect start``, ``run``, ``reset``) and
prints the first bad commit, hash and subject, with a trace that reproduces its failure
and the replay command. The second is one bisection step, what ``git bisect run`` is
given: it runs the stress ``FLAGS`` once and turns however that run ended into a verdict
``git bisect run`` understands. ``docs/bisect.md`` is the walk-through.

A step's exit code (:func:`verdict`):

======================================  =====  ===========================================
the stress run ended with               exit   because
======================================  =====  ===========================================
0                                       0      good: no violation
1                                       1      bad: a violation or a stall
125                                     125    skip: the plug-in does not load here, or
                                               an internal error of the harness
2                                       125    skip: these flags cannot run here (a flag
                                               this revision's harness does not know)
130, or killed by SIGINT                125    skip: the run alone was interrupted
killed by SIGSEGV, SIGBUS, SIGILL,      1      bad: the code under test crashed the
SIGFPE, SIGABRT, SIGSYS, SIGTRAP               interpreter
killed by any other signal (SIGKILL,    125    skip: stopped from outside (the OOM
SIGTERM, SIGHUP, SIGXCPU, ...)                 killer, a timeout, a person)
126, 127                                125    skip: the interpreter could not be run
any other status (3..255)               1      bad: the code under test ended the
                                               process (``os._exit(n)``): the CLI
                                               never exits so
could not be started                    125    skip
the step itself got Ctrl-C              130    abort the bisection, on purpose
======================================  =====  ===========================================

The helper's own exit code: 0 the first bad commit was named and its failure reproduced;
1 no single commit could be named (an end misjudged, only skipped commits left, or the
culprit did not fail again); 2 bad usage (not a git repository, unknown revision, dirty
work tree, ``--good`` equal to ``--bad``, a bisection already running, unusable stress
flags); 125 git or the harness failed (the message says how); 130 interrupted, after
``git bisect reset``.
"""

# Why a bisection driven this way names the right commit.
#
# git bisect trusts every answer it gets, so every answer must be a function of the
# checked-out code alone and must never be out of the range git accepts:
#
# 1. Same code, same verdict. The flags must name a controlled run (--seeds, which
#    sweeps the portfolio, or a controlled --sched): its schedule is a function of the
#    seed and the code, never of the wall clock or PYTHONHASHSEED. A free-running run
#    is refused: it can pass at a bad commit and fail at a good one, and git would
#    believe both.
#
# 2. The code judged is the code checked out. Each run is a fresh interpreter
#    (``sys.executable -m stress``) with the work tree first on PYTHONPATH, and with an
#    empty, private byte-code cache (PYTHONPYCACHEPREFIX in a scratch directory). The
#    obvious version, running in the work tree with the usual __pycache__, is wrong:
#    Python trusts a .pyc whose recorded source mtime (whole seconds) and size match,
#    and git checks out two revisions of a module within the same second; a one-token
#    fix (``!=`` for ``==``) keeps the size, so the next step imports the previous
#    revision's byte code and repeats its verdict. The run's working directory is the
#    scratch directory too, so a failing run's default trace file never lands in the
#    work tree (git checks out over a tree that stays exactly as committed).
#
# 3. Every ending is a verdict. git bisect run aborts on an exit code above 127 and
#    counts 126 and 127 as bad; the stress CLI keeps to 0, 1, 2, 125 and 130, but code
#    under test can end the process itself (os._exit, a signal). The step runs the
#    stress command as a child and maps whatever status it gets (table above); only an
#    interrupt of the step itself becomes 130, which aborts the bisection on purpose.
#
# 4. The ends are judged before git is asked. git never runs --good or --bad; if the
#    budget misses the bug at --bad, every step is "good" and git names --bad itself
#    with full confidence; if the bug is older than --good, git names some commit after
#    it. So the helper runs the flags at both ends first and stops unless --bad fails
#    and --good passes.
#
# 5. The step that git runs does not change with the checkout. When the repository is
#    the harness itself (bisecting a model or scheme change with an editable install),
#    importing stress.bisect after a checkout would import that revision's version, or
#    nothing. So git runs a private copy of this file, and this file imports only the
#    standard library at module level (the helper's imports of the CLI happen before
#    the first checkout).
#
# 6. The session always ends. ``git bisect reset`` runs in a ``finally`` with SIGINT
#    ignored (a second Ctrl-C must not leave the repository mid-bisection), after the
#    ``git bisect run`` process group, started in a session of its own, is stopped.

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence, TextIO

__all__ = ["main", "verdict", "run_step", "Judged", "child_env", "GOOD", "BAD", "SKIP",
           "ABORT"]

PROG = "rcu-pgdat-stress bisect"

#: The exit codes ``git bisect run`` understands (the stress CLI's 0, 1, 125, 130).
GOOD = 0
BAD = 1
SKIP = 125
ABORT = 130
USAGE = 2

#: Signals that mean the process crashed by itself rather than was stopped.
CRASH_SIGNALS = frozenset(
    getattr(signal, name) for name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT",
                                       "SIGSYS", "SIGTRAP") if hasattr(signal, name))

_WORD = {GOOD: "good", BAD: "bad", SKIP: "skip", ABORT: "abort"}


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def verdict(status: int) -> tuple[int, str]:
    """The bisection verdict for a stress run that ended with ``status``, and why.

    ``status`` is a ``Popen.returncode``: negative for a child killed by that signal.
    The result is always ``GOOD``, ``BAD`` or ``SKIP`` (never above 127); ``ABORT`` is
    only for an interrupt of the step itself, which its caller sees as an exception.
    """
    if status == 0:
        return GOOD, "exit 0: no violation"
    if status == 1:
        return BAD, "exit 1: a violation or a stall"
    if status == SKIP:
        return SKIP, "exit 125: the code under test does not load (or an internal error)"
    if status == USAGE:
        return SKIP, "exit 2: these stress flags cannot run at this revision"
    if status in (ABORT, -signal.SIGINT):
        return SKIP, "the run was interrupted from outside: no verdict"
    if status < 0:
        name = _signal_name(-status)
        if -status in CRASH_SIGNALS:
            return BAD, f"killed by {name}: the code under test crashed the interpreter"
        return SKIP, f"killed by {name}: stopped from outside, no verdict"
    if status in (126, 127):
        return SKIP, f"exit {status}: the interpreter could not be run"
    return BAD, (f"exit {status}: the code under test ended the process itself "
                 "(the stress CLI never exits so)")


@dataclass
class Judged:
    """One judged run: the verdict for git, why, the child's status and its output."""

    code: int
    reason: str
    status: int | None          # Popen.returncode; None when it could not be started
    output: str

    @property
    def word(self) -> str:
        """``good``, ``bad`` or ``skip``."""
        return _WORD[self.code]


def _default_paths() -> set[str]:
    """Directories every interpreter of this installation searches anyway."""
    found = [*getattr(site, "getsitepackages", list)(), site.getusersitepackages()]
    return {os.path.normcase(os.path.abspath(p)) for p in found}


def child_env(work_tree: str, harness_root: str | None, pycache: str) -> dict[str, str]:
    """The environment of a judged run (see 2. in the comment at the top).

    PYTHONPATH is the work tree, then the directory the harness was imported from
    (unless it is a site directory, searched anyway and not to be put before the
    standard library), then what it was. The byte-code cache is private to this run.
    """
    env = dict(os.environ)
    parts = [work_tree]
    if harness_root and os.path.normcase(os.path.abspath(harness_root)) not in _default_paths():
        parts.append(harness_root)
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONPYCACHEPREFIX"] = pycache
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"              # the output interleaves as it happened
    return env


def _signal(proc: subprocess.Popen[str], group: bool, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        if group and hasattr(os, "killpg"):
            os.killpg(proc.pid, signum)
        elif proc.poll() is None:
            proc.send_signal(signum)


def _stop(proc: subprocess.Popen[str], group: bool) -> None:
    """Stop ``proc``, and every process of its group if it leads one; reap it.

    The group is signalled even when its leader has already exited: ``git bisect run``
    may be gone while the step it started and that step's run are still alive.
    """
    _signal(proc, group, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        _signal(proc, group, signal.SIGKILL)
        proc.wait()
    if group:
        _signal(proc, group, signal.SIGKILL)     # whatever ignored SIGTERM
    if proc.stdout is not None:
        proc.stdout.close()


def _stream(cmd: Sequence[str], *, cwd: str, env: dict[str, str] | None, sink: TextIO,
            own_group: bool = False) -> tuple[int, str]:
    """Run ``cmd``, copying its output (stdout and stderr, in order) to ``sink`` as it
    comes; returns its status and the output. Any exception here (Ctrl-C included)
    stops the process, and its group when ``own_group``, before it propagates."""
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", start_new_session=own_group)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            sink.write(line)
            sink.flush()
        status = proc.wait()
    except BaseException:
        _stop(proc, own_group)
        raise
    proc.stdout.close()
    return status, "".join(lines)


def run_step(work_tree: str, flags: Sequence[str], *, harness_root: str | None,
             sink: TextIO) -> Judged:
    """Run ``python -m stress FLAGS`` as the work tree's code and judge how it ended.

    The run happens in a scratch directory (its working directory and byte-code cache),
    removed afterwards; pass absolute paths for files the flags should leave behind.
    ``KeyboardInterrupt`` propagates after the child is stopped.
    """
    with tempfile.TemporaryDirectory(prefix="rcu-pgdat-step-") as scratch:
        env = child_env(work_tree, harness_root, os.path.join(scratch, "pycache"))
        cmd = [sys.executable, "-m", "stress", *flags]
        try:
            status, output = _stream(cmd, cwd=scratch, env=env, sink=sink)
        except OSError as exc:
            return Judged(SKIP, f"the run could not be started: {exc}", None, "")
    code, reason = verdict(status)
    return Judged(code, reason, status, output)


# -- git ----------------------------------------------------------------------------------


class _RefusedError(Exception):
    """The bisection cannot start as asked: one line says why (exit 2)."""


class _GitError(Exception):
    """git (or the harness) failed where it should not have (exit 125)."""


def _git(top: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``git -C top ARGS``, captured; raises ``_GitError`` with git's words if asked."""
    proc = subprocess.run(["git", "-C", top, *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, errors="replace", check=False)
    if check and proc.returncode != 0:
        raise _GitError(f"git {' '.join(args)} failed (exit {proc.returncode}): "
                        f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def _toplevel(repo: str) -> str:
    proc = _git(repo, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise _RefusedError(f"{repo} is not inside a git work tree "
                            f"({proc.stderr.strip() or 'no work tree'}); give --repo DIR")
    return proc.stdout.strip()


def _resolve(top: str, option: str, rev: str) -> str:
    if rev.startswith("-"):
        raise _RefusedError(f"{option} {rev!r}: a revision cannot start with '-'")
    proc = _git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise _RefusedError(f"{option} {rev!r}: unknown revision in {top} "
                            "(git log --oneline shows the commits)")
    return proc.stdout.strip()


def _describe(top: str, sha: str) -> str:
    """``<short hash> <subject>``."""
    return _git(top, "log", "-1", "--format=%h %s", sha).stdout.strip()


def _check_repo(top: str) -> None:
    if _git(top, "bisect", "log", check=False).returncode == 0:
        raise _RefusedError(f"a bisection is already running in {top}; finish it "
                            "first with git bisect reset")
    dirty = _git(top, "status", "--porcelain", "--untracked-files=no").stdout.splitlines()
    if dirty:
        shown = ", ".join(line[3:] for line in dirty[:5]) + (", ..." if len(dirty) > 5 else "")
        raise _RefusedError(f"the work tree of {top} has uncommitted changes ({shown}); "
                            "commit or stash them: bisecting checks out other revisions")


def _inside(path: str, top: str) -> bool:
    real, root = os.path.realpath(path), os.path.realpath(top)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


# -- the helper ---------------------------------------------------------------------------


@dataclass
class _Plan:
    """What the helper was asked to do, checked."""

    top: str
    good: str
    bad: str
    flags: list[str]
    trace: str | None           # None: a new temporary directory, made when needed
    harness_root: str


def _check_flags(flags: list[str]) -> None:
    """The stress flags parse, make a possible run, and are controlled (see 1.)."""
    from .cli import build_parser, config_from_args
    from .usage import CommandLineError
    from rcu_pgdat.harness import is_controlled

    if not flags:
        raise _RefusedError("give the stress flags after '--', for example -- --flavor "
                            "myrcu:MyRCU --seeds 1-20 --steps 20000")
    try:
        args = build_parser().parse_args(flags)
        cfg = config_from_args(args)
    except CommandLineError as exc:
        raise _RefusedError(f"stress flags: {exc}") from None
    except SystemExit:                          # --help among the stress flags
        raise _RefusedError("stress flags: --help is not a run") from None
    if args.replay or args.trace_out or args.list_scenarios or args.list_mutants:
        raise _RefusedError("stress flags: leave out --replay, --trace-out, "
                            "--list-scenarios and --list-mutants (the helper writes the "
                            "trace itself)")
    if not is_controlled(cfg.sched):
        raise _RefusedError("stress flags: give --seeds (a portfolio sweep) or a controlled "
                            "--sched: a free-running run does not give the same verdict twice")


def _plan(opts: argparse.Namespace, flags: list[str]) -> _Plan:
    if not opts.good or not opts.bad:
        raise _RefusedError("give both --good REV and --bad REV")
    if opts.harness_root:
        raise _RefusedError("--harness-root is for --step")
    top = _toplevel(opts.repo)
    good = _resolve(top, "--good", opts.good)
    bad = _resolve(top, "--bad", opts.bad)
    if good == bad:
        raise _RefusedError(f"--good {opts.good} and --bad {opts.bad} are the same "
                            f"commit ({good[:12]}): nothing to bisect")
    if _git(top, "merge-base", "--is-ancestor", bad, good, check=False).returncode == 0:
        raise _RefusedError(f"--bad {opts.bad} is an ancestor of --good {opts.good}: "
                            "are they swapped?")
    _check_repo(top)
    _check_flags(flags)
    trace = os.path.abspath(opts.trace_out or tempfile.gettempdir())
    if _inside(trace, top):
        raise _RefusedError(f"--trace-out {trace} is inside the work tree {top}; put it "
                            "outside (checkouts must find the tree as committed)")
    if opts.trace_out and not os.path.isdir(os.path.dirname(trace)):
        raise _RefusedError(f"--trace-out {opts.trace_out}: no such directory")
    return _Plan(top, good, bad, flags, opts.trace_out and trace,
                 str(Path(__file__).resolve().parent.parent))


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT in this block (main thread only; elsewhere a no-op)."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:                          # not the main thread
        yield
        return
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _session(top: str) -> Iterator[None]:
    """``git bisect start`` ... ``git bisect reset``, the reset whatever happens."""
    _git(top, "bisect", "start")
    try:
        yield
    finally:
        with _sigint_ignored():
            proc = _git(top, "bisect", "reset", check=False)
        if proc.returncode != 0:
            print(f"{PROG}: git bisect reset failed: {proc.stderr.strip()}; run it "
                  f"yourself in {top}", file=sys.stderr)


def _judge(plan: _Plan, sha: str, what: str, extra: Sequence[str] = ()) -> Judged:
    """Check out ``sha`` (inside the session) and judge the flags there."""
    _git(plan.top, "checkout", "-q", "--detach", sha)
    where = f"{what} {_describe(plan.top, sha)}"
    print(f"--- {where}: running the stress flags", file=sys.stderr, flush=True)
    step = run_step(plan.top, [*plan.flags, *extra], harness_root=plan.harness_root,
                    sink=sys.stderr)
    print(f"--- {where}: {step.word} ({step.reason})", file=sys.stderr, flush=True)
    return step


def _step_command(plan: _Plan, scratch: str) -> list[str]:
    """What ``git bisect run`` runs: a private copy of this file (see 5.) in --step."""
    copy = os.path.join(scratch, "rcu_pgdat_bisect_step.py")
    shutil.copyfile(__file__, copy)
    return [sys.executable, copy, "--step", "--repo", plan.top, "--harness-root",
            plan.harness_root, "--", *plan.flags]


_LOG_LINE = re.compile(r"^# (first bad commit|possible first bad commit|skip|good|bad): "
                       r"\[([0-9a-f]+)\] ?(.*)$")


def _read_log(top: str) -> dict[str, list[str]]:
    """``git bisect log`` comments by kind: ``first bad commit``, ``skip``, ..."""
    found: dict[str, list[str]] = {}
    for line in _git(top, "bisect", "log").stdout.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            found.setdefault(match.group(1), []).append(match.group(2))
    return found


def _bug_line(output: str) -> str | None:
    return next((line.strip() for line in output.splitlines() if line.startswith("BUG: ")),
                None)


def _bisect(plan: _Plan) -> int:
    """The session: judge the ends, let git bisect, re-run the culprit for its trace."""
    out = sys.stdout
    with tempfile.TemporaryDirectory(prefix="rcu-pgdat-bisect-run-") as scratch, \
            _session(plan.top):
        bad_end = _judge(plan, plan.bad, "--bad")
        if bad_end.code != BAD:
            print(f"{PROG}: --bad {_describe(plan.top, plan.bad)} is not bad with these "
                  f"flags ({bad_end.reason}); widen --seeds or raise --steps until "
                  "rcu-pgdat-stress FLAGS exits 1 there", file=out)
            return BAD
        good_end = _judge(plan, plan.good, "--good")
        if good_end.code != GOOD:
            print(f"{PROG}: --good {_describe(plan.top, plan.good)} is not good with these "
                  f"flags ({good_end.reason}); pick an older --good", file=out)
            return BAD
        _git(plan.top, "bisect", "bad", plan.bad)
        _git(plan.top, "bisect", "good", plan.good)
        log = _read_log(plan.top)
        if "first bad commit" not in log:
            status, _ = _stream(["git", "bisect", "run", *_step_command(plan, scratch)],
                                cwd=plan.top, env=None, sink=sys.stderr, own_group=True)
            log = _read_log(plan.top)
            if "first bad commit" not in log and "possible first bad commit" not in log:
                raise _GitError(f"git bisect run ended (exit {status}) without naming a "
                                "commit; its output is above")
        skipped = [_describe(plan.top, sha) for sha in log.get("skip", [])]
        if "first bad commit" not in log:
            print(f"{PROG}: only skipped commits are left; the first bad commit is one of:",
                  file=out)
            for sha in log["possible first bad commit"]:
                print(f"  {_describe(plan.top, sha)}", file=out)
            return BAD
        culprit = log["first bad commit"][0]
        return _report(plan, culprit, skipped, log)


def _report(plan: _Plan, culprit: str, skipped: list[str], log: dict[str, list[str]]) -> int:
    """Re-run the flags at the culprit with a trace, replay it, print the result."""
    out = sys.stdout
    trace = plan.trace or os.path.join(tempfile.mkdtemp(prefix="rcu-pgdat-bisect-"),
                                       "first-bad.trace.json")
    again = _judge(plan, culprit, "first bad commit", ["--trace-out", trace])
    judged = sum(len(log.get(k, [])) for k in ("good", "bad", "skip")) - 2
    subject = _git(plan.top, "log", "-1", "--format=%s", culprit).stdout.strip()
    print("--- Bisection: first bad commit", file=out)
    print(f"{culprit} {subject}", file=out)
    print(f"  steps judged by git bisect run: {judged}; skipped: "
          f"{'; '.join(skipped) if skipped else 'none'}", file=out)
    if again.code != BAD:
        print(f"!!! it did not fail again ({again.reason}): the verdict is not stable "
              "(a wall-clock stall timeout?)", file=out)
        print("--- End of bisection: UNSTABLE", file=out, flush=True)
        return BAD
    bug = _bug_line(again.output)
    print(f"  {bug or again.reason}", file=out)
    if not os.path.exists(trace):
        print(f"  no trace: {again.reason}", file=out)
    else:
        replayed = run_step(plan.top, ["--quiet", "--replay", trace],
                            harness_root=plan.harness_root, sink=sys.stderr)
        same = replayed.code == BAD and _bug_line(replayed.output) == bug
        print(f"trace: {trace}", file=out)
        print(f"replay: cd {shlex.quote(plan.top)} && git checkout --detach {culprit[:12]} "
              f"&& rcu-pgdat-stress --replay {shlex.quote(trace)}", file=out)
        print(f"  (then git checkout - to go back; replayed here: "
              f"{'the same violation' if same else 'DIFFERENT: ' + replayed.reason})",
              file=out)
    print("--- End of bisection: FOUND", file=out, flush=True)
    return GOOD


# -- one step -----------------------------------------------------------------------------


def _step(opts: argparse.Namespace, flags: list[str]) -> int:
    """What ``git bisect run`` runs: judge the flags at the checked-out revision."""
    if opts.good or opts.bad or opts.trace_out:
        print(f"{PROG}: --step takes no --good, --bad or --trace-out", file=sys.stderr)
        return SKIP                 # a step never says "bad" about its own misuse
    try:
        found = _git(opts.repo, "rev-parse", "--show-toplevel", check=False).stdout.strip()
        work_tree = found or os.path.abspath(opts.repo)     # not a repository: the directory
        root = opts.harness_root or str(Path(__file__).resolve().parent.parent)
        step = run_step(work_tree, flags, harness_root=root, sink=sys.stdout)
        rev = _git(work_tree, "rev-parse", "--short", "HEAD", check=False).stdout.strip()
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted: the bisection stops here", file=sys.stderr)
        return ABORT
    except Exception:                          # noqa: BLE001 - harness trouble is no verdict
        print(f"{PROG}: internal error, this revision is skipped:\n"
              f"{traceback.format_exc()}", file=sys.stderr)
        return SKIP
    print(f"{PROG}: {rev or work_tree}: {step.word} ({step.reason})", flush=True)
    return step.code


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, usage=f"{PROG} --good REV --bad REV [--repo DIR] [--trace-out FILE] "
        f"-- FLAGS\n       {PROG} --step [--repo DIR] -- FLAGS",
        description="Find the first commit at which the stress FLAGS (a controlled run: "
        "--seeds A-B, the portfolio by default, or a controlled --sched) fail, with git "
        "bisect; see docs/bisect.md.")
    p.add_argument("--good", metavar="REV", help="a revision that passes")
    p.add_argument("--bad", metavar="REV", help="a later revision that fails")
    p.add_argument("--repo", metavar="DIR", default=".",
                   help="the repository (default: the current directory)")
    p.add_argument("--trace-out", metavar="FILE",
                   help="where the culprit's trace goes (outside the work tree; default: "
                        "a new temporary directory)")
    p.add_argument("--step", action="store_true",
                   help="one step for git bisect run: exit 0 good, 1 bad, 125 skip, "
                        "130 interrupted")
    p.add_argument("--harness-root", help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``rcu-pgdat-stress bisect``; returns the exit code (see the module docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    own, flags = (args[:args.index("--")], args[args.index("--") + 1:]) if "--" in args \
        else (args, [])
    try:
        opts = _parser().parse_args(own)
    except SystemExit as exc:                  # --help (0) or an argparse error (2)
        code = exc.code if isinstance(exc.code, int) else USAGE
        return SKIP if code and "--step" in own else code
    if opts.step:
        return _step(opts, flags)
    try:
        plan = _plan(opts, flags)
        return _bisect(plan)
    except _RefusedError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return USAGE
    except (_GitError, OSError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return SKIP
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the repository is back where it was", file=sys.stderr)
        return ABORT


if __name__ == "__main__":                     # the private step copy git runs (see 5.)
    sys.exit(main())
