"""Child processes for the signal tests: started as a shell starts a foreground job,
watched line by line, and never waited for without a bound.

A process started with SIGINT ignored (a background job of a non-interactive shell,
``nohup``-like launchers, some CI runners) passes that on to its children, and a Python
started so never turns SIGINT into ``KeyboardInterrupt``: a Ctrl-C test run from there
sends its signal to a process that ignores it. A terminal's Ctrl-C reaches a foreground
job whose SIGINT is at its default, so :func:`start` puts it back there (a one-line
trampoline that resets it and execs the command: no ``preexec_fn`` in a threaded
pytest worker).

Tests send a signal only after the child said it is running (:meth:`Child.wait_for`), so
the signal cannot arrive before the child can handle it, whatever the load.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Callable

#: Resets SIGINT to its default, then becomes the command (argv[1:]).
_FOREGROUND = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
               "os.execvp(sys.argv[1], sys.argv[1:])")
#: A bound on every wait here: a stuck child fails the test well before pytest-timeout.
WAIT = 90.0


class _Pump:
    """Copies one pipe (if any) into a list of lines; ``changed`` is notified at every
    line and at the end."""

    def __init__(self, stream: IO[str] | None, changed: threading.Condition) -> None:
        self.lines: list[str] = []
        self.eof = stream is None
        self._changed = changed
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        if stream is not None:
            self._thread.start()

    def _run(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.eof = True
            self._changed.notify_all()

    def join(self, timeout: float) -> None:
        if self._thread.ident is not None:
            self._thread.join(timeout)


class Child:
    """A running child process with both pipes read as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self._changed = threading.Condition()
        self._out = _Pump(proc.stdout, self._changed)
        self._err = _Pump(proc.stderr, self._changed)

    def wait_for(self, pred: Callable[[str], bool], *, stream: str = "stderr",
                 timeout: float = WAIT) -> str:
        """The first line of ``stream`` that satisfies ``pred``; fails the test if the
        child ends or ``timeout`` passes first."""
        pump = self._err if stream == "stderr" else self._out
        with self._changed:
            ok = self._changed.wait_for(
                lambda: any(map(pred, pump.lines)) or pump.eof, timeout)
            found = next(filter(pred, pump.lines), None)
        assert ok and found is not None, (f"the child did not say it was running "
                                          f"(exit {self.proc.poll()}):\n{self.text()}")
        return found

    def finish(self, timeout: float = WAIT) -> tuple[str, str]:
        """Wait for the child to end; its whole stdout and stderr."""
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._out.join(timeout)
        self._err.join(timeout)
        return "".join(self._out.lines), "".join(self._err.lines)

    def text(self) -> str:
        """What the child wrote so far, for a failure message."""
        return "".join(self._out.lines) + "".join(self._err.lines)


def start(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None,
          merge: bool = False) -> Child:
    """Start ``cmd`` as a foreground job would run (SIGINT at its default), its output
    watched; ``merge`` sends stderr to stdout (then watch ``stream="stdout"``)."""
    proc = subprocess.Popen([sys.executable, "-c", _FOREGROUND, *cmd], cwd=cwd,
                            env=env if env is not None else dict(os.environ),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if merge else subprocess.PIPE,
                            text=True)
    return Child(proc)
