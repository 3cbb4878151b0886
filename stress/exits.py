"""The code under test may not end the process: ``os._exit()`` becomes an exception.

``sys.exit()`` raises ``SystemExit``, which the harness catches like any exception: in a
worker it is a ``thread-exception`` violation (exit 1), while a plug-in is imported or
built it is a plug-in that cannot be loaded (exit 125). ``os._exit()`` raises nothing:
the interpreter ends at once, with whatever status the code under test chose, no
summary and no report. While :func:`exits_guarded` is active, ``os._exit(n)`` called in
this process raises :class:`ExitCalled` (a ``SystemExit``) in the calling thread
instead, so both ways of ending the process are reported the same way, and the run
ends as every failing run does.

Why this is safe: only this process's Python-level calls are affected. A child of
``fork()`` (``multiprocessing``, a plug-in's own helper process) has another process
id and gets the real ``os._exit``, which it needs: a forked child must never unwind
into the parent's code. The previous function is restored when the block ends.
Code that reaches ``posix._exit`` or the C library directly still ends the process;
``rcu-pgdat-stress bisect --step`` judges that case from the outside.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import NoReturn

__all__ = ["ExitCalled", "exits_guarded"]


class ExitCalled(SystemExit):
    """``os._exit(code)`` called by the code under test while exits were guarded."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.status = code

    def __str__(self) -> str:
        return f"os._exit({self.status}) called: the code under test tried to end the process"


@contextlib.contextmanager
def exits_guarded() -> Iterator[None]:
    """Within the block, ``os._exit()`` in this process raises :class:`ExitCalled`."""
    real = os._exit
    owner = os.getpid()

    def guarded_exit(status: int) -> NoReturn:
        if os.getpid() != owner:            # a forked child: really end it
            real(status)
        raise ExitCalled(status)

    os._exit = guarded_exit
    try:
        yield
    finally:
        os._exit = real
