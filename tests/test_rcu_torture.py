"""The built-in torture run: SUCCESS on the real flavors, FAILURE on broken ones."""

from __future__ import annotations

import functools
import threading

import pytest

from rcu_pgdat import sched
from rcu_pgdat.check import PIPE_LEN
from rcu_pgdat.rcu import MODES, Memb
from stress.torture import run_torture
from test_rcu_support import NO_WAIT, REAL


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["qsbr", "memb"])
@pytest.mark.parametrize("is_broken", [False, True], ids=["real", "no-wait"])
def test_torture_verdict(kind: str, is_broken: bool, mode: str) -> None:
    cls = NO_WAIT[kind] if is_broken else REAL[kind]
    flavor = functools.partial(cls, mode=mode)
    result = run_torture(flavor, duration=0.3, seed=7, readers=3, writers=2,
                         stat_interval=0.15)
    report = result.format()
    assert result.success == (not is_broken), report
    assert result.reads > 0 and result.versions > 0 and result.grace_periods > 0
    assert len(result.reader_pipe) == PIPE_LEN + 1
    assert report.splitlines()[0].startswith(f"{kind}-torture:--- Start of test:")
    if is_broken:
        assert any(result.reader_pipe[2:]), report
        assert f"{kind}-torture: !!! Reader Pipe:" in report
        assert "--- End of test: FAILURE" in report
        assert "reproduce: run_torture(" in report and "test_rcu_support.NoWait" in report
    else:
        assert result.reader_pipe[0] > 0 and not any(result.reader_pipe[2:])
        assert result.frees == result.versions          # everything retired was freed
        assert "!!!" not in report
        assert report.splitlines()[-1].startswith(f"{kind}-torture:--- End of test: SUCCESS")


class HangingMemb(Memb):
    """Broken: a grace period that never ends (until the test releases it)."""

    release = sched.Event("hanging-memb.release")

    def _wait_for_readers(self) -> None:
        self.release.wait()


def test_torture_reports_a_stall_instead_of_hanging() -> None:
    HangingMemb.release.clear()
    try:
        result = run_torture(HangingMemb, duration=0.1, seed=1, readers=1, writers=1,
                             stall_timeout=0.3)
    finally:
        HangingMemb.release.set()       # let the stuck writer finish
    report = result.format()
    assert not result.success
    assert "!!! stall: torture-writer-0 did not finish" in report
    assert "--- End of test: FAILURE" in report


class FailingUnlockMemb(Memb):
    """Broken: read_unlock() blows up after a while."""

    def read_unlock(self) -> None:
        super().read_unlock()
        if threading.current_thread().name == "torture-reader-0":
            raise RuntimeError("simulated failure in read_unlock")


# The callback worker's failing grace period goes to threading.excepthook, by design.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_torture_reports_exceptions_in_threads() -> None:
    result = run_torture(FailingUnlockMemb, duration=0.1, seed=1, readers=2, writers=1)
    report = result.format()
    assert not result.success
    assert "!!! torture-reader-0: Traceback" in report
    assert "simulated failure in read_unlock" in report


class MinimalPlugin:
    """A plug-in with only the required protocol methods (no callbacks, no cookies)."""

    name = "minimal"

    def __init__(self) -> None:
        self._rcu = Memb()
        self.read_lock = self._rcu.read_lock
        self.read_unlock = self._rcu.read_unlock
        self.synchronize = self._rcu.synchronize


def test_torture_needs_only_the_required_protocol() -> None:
    result = run_torture(MinimalPlugin, duration=0.1, seed=2, readers=2, writers=1)
    assert result.success, result.format()
    assert result.grace_periods > 0 and result.frees == result.versions
    assert result.format().splitlines()[0].startswith("minimal-torture:")
