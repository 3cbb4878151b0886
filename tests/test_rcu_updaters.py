"""Updater-side bugs that need two updaters at once, caught by the harness's oracles.

Each test is a small controlled program: readers that linger in their sections and two
updaters that use the API under test at the same time, the flavor driven through the
harness's checked wrappers (``rcu_pgdat.harness.checked``) so that the oracles, not
the test, judge every grace period: a section that began before a grace period (a
``synchronize()`` call, a cookie, a queued callback) and is still open when that grace
period ends is a ``gp-too-short``. The same program runs over the same seeds against
the real flavor, which must stay clean, and against the catalogue's mutant
(``rcu_pgdat.mutants``), which must be caught.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rcu_pgdat import sched
from rcu_pgdat.check import Collector, Oracles
from rcu_pgdat.mutants import MUTANTS
from rcu_pgdat.rcu import QSBR, SRCU
from rcu_pgdat.harness.checked import CheckedRCU, CheckedSRCU

#: Seeds swept per case. Measured when written (random strategy, 100 seeds): the
#: mutants fail 53, 46, 29, 20 and 40 of them, in ``CASES`` order.
SEEDS = range(60)
#: Schedule points a reader stays inside each section.
LINGER = 12
#: Readers: a grace period still waiting for some of them is under way while the
#: others are already inside sections it does not cover.
READERS = 3

Updater = Callable[[Any], None]


def _linger(label: str) -> None:
    for _ in range(LINGER):
        sched.point(label)


def _rcu_reader(rcu: CheckedRCU) -> None:
    rcu.register_thread()
    for _ in range(3):
        rcu.read_lock()
        _linger("test:reader:inside")
        rcu.read_unlock()
        rcu.quiescent_state()
    rcu.unregister_thread()


def _srcu_reader(srcu: CheckedSRCU) -> None:
    for _ in range(3):
        idx = srcu.read_lock()
        _linger("test:reader:inside")
        srcu.read_unlock(idx)
        sched.point("test:reader:outside")


def program(make_flavor: Callable[[], Any], srcu: bool, first: Updater,
            second: Updater) -> Callable[[], sched.Program]:
    """A factory for ``sched.sweep``: lingering readers, two updaters running ``first``
    and ``second`` on the wrapped flavor, and a teardown thread that shuts the flavor
    down once they are done; the check fails on any violation the oracles reported."""
    def make() -> sched.Program:
        collector = Collector(stop_on_first=False)
        oracles = Oracles(collector)
        flavor = make_flavor()
        wrapped: Any = CheckedSRCU(flavor, oracles) if srcu else CheckedRCU(flavor, oracles)
        done: list[str] = []

        def updater(body: Updater, name: str) -> Callable[[], None]:
            def run() -> None:
                body(wrapped)
                done.append(name)
            return run

        def teardown() -> None:
            sched.wait_until(lambda: len(done) == READERS + 2, "test: the others to finish")
            (wrapped.cleanup if srcu else wrapped.shutdown)()

        def reader() -> None:
            (_srcu_reader if srcu else _rcu_reader)(wrapped)
            done.append(sched.current_name())

        def check() -> None:
            if not collector.ok:
                first = collector.violations[0]
                raise AssertionError(f"{first.title}\n{first.format()}")

        threads = {f"reader-{n}": reader for n in range(READERS)}
        threads.update({"updater-a": updater(first, "a"), "updater-b": updater(second, "b"),
                        "teardown": teardown})
        return sched.Program(threads, check)
    return make


def caught(make_flavor: Callable[[], Any], first: Updater, second: Updater,
           srcu: bool = False, stop_at_first: bool = False) -> tuple[list[int], str]:
    """The failing seeds of a random sweep, and the first failure's first line."""
    result = sched.sweep(program(make_flavor, srcu, first, second), "random", SEEDS,
                         stop_at_first=stop_at_first, max_steps=20_000)
    why = result.first.errors[0].summary() if result.first is not None else ""
    return result.failing_seeds, why


def busy(rcu: Any) -> None:
    """The first updater: grace periods back to back, so one is nearly always under way."""
    for _ in range(8):
        sched.point("test:unlink")
        rcu.synchronize()


def now_and_then(op: Updater) -> Updater:
    """The second updater: ``op`` four times, a while apart, then a barrier if any."""
    def run(rcu: Any) -> None:
        for _ in range(4):
            _linger("test:between")
            op(rcu)
        getattr(rcu, "barrier", lambda: None)()
    return run


def synchronize(rcu: Any) -> None:
    rcu.synchronize()


def poll_a_cookie(rcu: CheckedRCU) -> None:
    cookie = rcu.get_state()
    for _ in range(4 * LINGER):
        if rcu.poll_state(cookie):
            return
        sched.yield_point("test:poll")
    rcu.cond_synchronize(cookie)


def cond_synchronize(rcu: CheckedRCU) -> None:
    cookie = rcu.get_state()
    for _ in range(LINGER // 2):
        sched.point("test:holding-a-cookie")
    rcu.cond_synchronize(cookie)


def queue_a_callback(rcu: CheckedRCU) -> None:
    rcu.call_rcu(lambda: None)


#: mutant name -> (real flavor, first updater, second updater, whether it is SRCU).
CASES: dict[str, tuple[type[Any], Updater, Updater, bool]] = {
    "rcu-gp-shared-early": (QSBR, busy, now_and_then(synchronize), False),
    "rcu-cookie-early": (QSBR, busy, now_and_then(poll_a_cookie), False),
    # (idle moments between grace periods: a cookie taken in one, trusted in the next)
    "cond-sync-stale-cookie": (QSBR, now_and_then(synchronize), now_and_then(cond_synchronize),
                               False),
    "call-rcu-joins-gp": (QSBR, busy, now_and_then(queue_a_callback), False),
    "srcu-shared-flip": (SRCU, busy, now_and_then(synchronize), True),
}


@pytest.mark.parametrize("name", list(CASES))
def test_updater_mutant_is_caught_and_the_real_flavor_is_not(name: str) -> None:
    real, first, second, srcu = CASES[name]
    mutant = MUTANTS[name]
    broken = mutant.srcu_cls if srcu else mutant.flavor_cls
    assert broken is not None and issubclass(broken, real)
    failing, why = caught(real, first, second, srcu)
    assert failing == [], why
    failing, why = caught(broken, first, second, srcu, stop_at_first=True)
    assert failing, f"{name} survived seeds {SEEDS.start}..{SEEDS.stop - 1}"
    assert "gp-too-short" in why, why


def test_each_updater_mutant_needs_two_updaters() -> None:
    """With one updater alone these bugs cannot show: the same program with the second
    updater doing nothing runs clean against each mutant. (``call-rcu-joins-gp`` is
    left out: its second updater is the callback worker's own grace period.)"""
    for name, (_, _, second, srcu) in CASES.items():
        if name == "call-rcu-joins-gp":
            continue
        mutant = MUTANTS[name]
        broken = mutant.srcu_cls if srcu else mutant.flavor_cls
        assert broken is not None
        failing, why = caught(broken, lambda rcu: None, second, srcu)
        assert failing == [], f"{name}: {why}"
