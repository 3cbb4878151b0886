"""The CLI's contract with bad input, as the fuzz tests check it.

Whatever the command line, the trace file or the plug-in, ``rcu-pgdat-stress`` ends
with a documented exit code (README, "Exit codes"), says in one line why when it
refuses (2) or cannot run (125), and never shows a traceback or an internal error.
:func:`run_cli` runs it in this process (fast: no interpreter start, which costs
more than a short run on a loaded machine); :func:`run_cli_process` in a child, for
what must not happen here (``os._exit``, a thread blocked for good).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from stress import cli

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = Path(__file__).resolve().parent / "plugins"
PROG = "rcu-pgdat-stress"
#: The exit codes the README documents.
DOCUMENTED = {0, 1, 2, 125, 130}

#: Hypothesis settings of the default selection: few examples, the same ones every run
#: (a CI failure is reproducible; the database still replays what failed here).
DEFAULT_FUZZ = settings(max_examples=20, deadline=None, derandomize=True,
                        suppress_health_check=[HealthCheck.too_slow,
                                               HealthCheck.function_scoped_fixture])
#: The nightly (``slow``) selection: many more examples, fresh ones every night.
NIGHTLY_FUZZ = settings(DEFAULT_FUZZ, max_examples=400, derandomize=False)


#: Any JSON-like value, the odd ones included (what a trace or a library caller may give).
anything = st.one_of(st.none(), st.booleans(), st.integers(-2, 70), st.integers(),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                     st.lists(st.one_of(st.integers(), st.text(max_size=4)), max_size=3))


@dataclass
class Ending:
    """How one CLI invocation ended."""

    argv: list[str]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return (f"{PROG} {' '.join(map(repr, self.argv))}\nexit {self.code}\n"
                f"--- stdout\n{self.out[-3000:]}\n--- stderr\n{self.err[-3000:]}")

    def check(self) -> Ending:
        """The contract: a documented code, one line for a refusal, no traceback."""
        assert self.code in DOCUMENTED, self
        assert "Traceback" not in self.out + self.err, self
        assert "internal error" not in self.err, self
        if self.code in (2, 125):
            lines = self.err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"{PROG}: "), self
        return self

    def refused(self, code: int, needle: str = "") -> None:
        """A refusal with ``code`` whose one line contains ``needle``."""
        self.check()
        assert self.code == code and needle in self.err, self


def run_cli(argv: list[str]) -> Ending:
    """``rcu-pgdat-stress ARGV`` in this process, its output captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return Ending(list(argv), code, out.getvalue(), err.getvalue())


def run_cli_process(argv: list[str], cwd: Path, timeout: float = 100) -> Ending:
    """``python -m stress ARGV`` in a child (the test plug-ins and ``cwd`` importable)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(PLUGINS)]))
    proc = subprocess.run([sys.executable, "-m", "stress", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    return Ending(list(argv), proc.returncode, proc.stdout, proc.stderr)
