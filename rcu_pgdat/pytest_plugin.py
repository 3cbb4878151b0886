"""pytest plugin: torture tests for your own RCU code, under the harness's schedulers.

A test asks for the ``rcu_harness`` fixture and hands ``run()`` a *setup function*.
For every seed, ``run()`` calls setup on a fresh run (new collector, oracles and
tracked allocator), starts the threads setup registered under the chosen scheduler,
and fails the test with a sanitizer-style report, the interleaving and one
``reproduce:`` line as soon as an oracle fires, a thread raises, or the schedule
deadlocks, hangs or never ends::

    from rcu_pgdat import sched
    from rcu_pgdat.check import Tracked
    from rcu_pgdat.rcu import QSBR

    class Box(Tracked):
        value: int

    def test_my_rcu(rcu_harness):
        def setup(h):
            rcu = h.checked(QSBR())                 # its sections and grace periods
            slot = [h.alloc.alloc(Box, "box", value=0)]   # are what the oracles see

            @h.thread("reader")
            def reader():
                rcu.register_thread()
                while not h.stopping():
                    rcu.read_lock()
                    sched.point("reader:load")
                    box = h.oracles.deref(slot[0], rcu.key)
                    sched.point("reader:use")
                    assert box.value >= 0           # use-after-free is caught here
                    rcu.read_unlock()
                    rcu.quiescent_state()
                    sched.yield_point("reader:loop")
                rcu.unregister_thread()

            @h.thread("updater")
            def updater():
                for i in range(1, 4):
                    old = slot[0]
                    sched.point("updater:publish")
                    slot[0] = h.alloc.alloc(Box, "box", value=i)
                    h.oracles.retire(old, rcu.key)
                    rcu.synchronize()
                    h.alloc.free(old)

        rcu_harness.run(setup)

Command-line options (``--rcu-seeds`` and ``--rcu-steps`` also decide what a reproduce
line runs; the command line overrides every default and every marker):

``--rcu-sched stress|portfolio|random|pct|pos|delay`` (default ``portfolio``)
    The controlled modes run exactly one model thread between two schedule points, the
    seed decides which, so a seed is an exact replay. ``portfolio`` (the default) runs,
    for seed ``i``, one strategy of a fixed rotation (``delay`` on every other seed, PCT
    at depths 3 and 2, POS), so a sweep of seeds does not bet on one; ``pct`` is
    probabilistic concurrency testing (depth 3; the run length is measured once per
    ``run()`` call), ``pos`` partial order sampling, ``delay`` uniform random with a few
    threads parked for rounds at a time (``rcu_pgdat.sched``). ``stress`` runs the threads free
    with seeded random yields at the points and a tiny switch interval: real
    parallelism, but the OS decides too, so its reproduce line only re-runs the same
    seed.
``--rcu-seeds A-B`` (default ``0-9``; ``N`` means ``N-N``)
    The seeds, inclusive; ``run()`` runs them in order and stops at the first failure.
``--rcu-no-intercept``
    Controlled runs intercept plain ``threading`` (Lock, RLock, Condition, Event,
    Semaphore, Barrier, Thread start/join), ``queue`` and ``time`` (sleep and the
    clocks count steps) by default, so code written without ``sched`` is scheduled as
    written; this option turns that off (``h.intercept``).
``--rcu-instrument MODULE[,MODULE...]``
    Schedule points at every shared access (attribute and subscript loads and stores,
    ``in`` tests, calls into C) of these modules' code, and a data-race style
    explanation of a failure (``h.instrument``).
``--rcu-steps N`` (default 10000)
    The step budget. ``h.stopping()`` turns true once a controlled run's clock (the
    steps of all threads together) reaches N; a run still going at ``N + max(N, 1000)``
    fails as a stall (a thread that loops without asking ``h.stopping()``). In stress
    mode each of the k registered threads stops after ``N // k`` of its own points.

The fixture ``rcu_harness`` (an :class:`RCUHarness`; one per test, nothing shared):

``h.run(setup) -> list[RunResult]``
    Calls ``setup(h)`` once per seed (and once more to measure the run length for
    ``pct``). Setup builds *all* state the threads share and registers the threads;
    it may also return a ``{name: body}`` mapping. Returns one
    :class:`rcu_pgdat.sched.RunResult` per seed when every seed passed; otherwise
    ``pytest.fail`` with the report (no Python traceback of the harness).
``h.thread(name)`` (a decorator) / ``h.spawn(name, body)``
    Register a thread body (setup only). Names identify threads in reports and
    schedules: unique, deterministic; ``rcu-teardown`` is the harness's own.
``h.checked(flavor, *, srcu=None)``
    Wrap an RCU flavor (``QSBR()``, ``Memb()``, a plug-in) in
    :class:`~rcu_pgdat.harness.CheckedRCU`, or an SRCU domain (anything with
    ``call_srcu``, or ``srcu=True``) in :class:`~rcu_pgdat.harness.CheckedSRCU`,
    so that the oracles see its sections and grace periods; use the wrapper, and its
    ``key`` with ``h.oracles.deref``/``retire``. After every thread finished the
    harness thread ``rcu-teardown`` shuts each wrapped flavor down (``shutdown()``,
    SRCU ``cleanup()``) inside the schedule, so callback workers end too.
``h.alloc``, ``h.oracles``, ``h.collector``
    This run's :class:`~rcu_pgdat.check.TrackedAllocator` (``alloc``/``free``: freed
    means poisoned, a later access raises in the reader and is reported),
    :class:`~rcu_pgdat.check.Oracles` (``deref``, ``retire``, ``section_begin``, ...)
    and :class:`~rcu_pgdat.check.Collector`. Valid during a run and, for inspection,
    after it (the last run's).
``h.check(fn)``
    A final check, run after every thread finished (setup only; usable as decorator).
``h.stopping()``
    True once the step budget is spent or a violation was reported: the loop
    condition of a thread that should run "for the whole test".
``h.seed``, ``h.mode``, ``h.steps``, ``h.seeds``
    The current seed and the settings.

What fails a run, first match wins: a violation the oracles reported (use-after-free,
gp-too-short, pipeline, sleep-in-atomic, section-leak, ...); an exception in a thread
or in a final check (``thread-exception``); deadlock, livelock, a thread blocked where
the scheduler cannot see it (``stall``, with every thread's stack), or a run over its
budget (``stall``).

Marker ``@pytest.mark.rcu_sweep(seeds=range(1, 50))`` (or ``rcu_sweep("1-50")``,
inclusive): the test becomes one item per seed, ``test_x[rcu-seed-7]``, each running
only its seed, so ``pytest -n auto`` (pytest-xdist) spreads a sweep over workers. The
``rcu_seed`` fixture is the item's seed (``None`` without the marker). ``--rcu-seeds``
replaces the marker's seeds.

pytest-timeout: a thread blocked outside the scheduler would hold a controlled run
forever. The harness notices it itself after ``min(5 s, (timeout - 1 s) / 3)`` of
wall-clock time without a schedule point (``timeout`` from the test's marker,
``--timeout``, ``PYTEST_TIMEOUT`` or the ini value; 5 s without one), and the scheduler
then gives the stuck thread ``max(1 s, that)`` to return, so the test fails with the
hang report and every thread's stack before pytest-timeout would kill it (a timeout
under 2 s leaves no room for that). Stress mode bounds each whole run the same way.
The setting is ``h.hang_timeout`` (seconds; a test may change it before ``run()``).

pytest-xdist: all state lives in the fixture and in ``config.stash``; the hooks a run
installs (``threading.excepthook``, the scheduler and its might-sleep hook) are
restored when the run ends.

Loading: installed, the package registers the plugin through the entry point
``pytest11: rcu_pgdat = rcu_pgdat.pytest_plugin``. Without it, ``-p
rcu_pgdat.pytest_plugin`` loads it; with the entry point installed that would register
the module twice, so write ``-p no:rcu_pgdat -p rcu_pgdat.pytest_plugin`` (what the
reproduce line of a plugin loaded by module name says).
"""

# Why the fixture is shaped this way, and what the simpler shape gets wrong.
#
# A run is a function of (setup, strategy) only. ``run()`` therefore calls setup
# again for every seed and gives it a new collector, new oracles and a new allocator
# (a fresh ``rcu_pgdat.harness.Run``): the schedulers re-run programs from scratch,
# and seed k's verdict must not depend on the seeds run before it. The obvious
# simpler fixture, "build the flavor and the objects once in the test body, run the
# thread bodies once per seed", is wrong twice over: seed 1 frees the objects that
# seed 2's readers start from (a use-after-free the code under test never did), and
# the reproduce line ``--rcu-seeds 7-7`` would run seed 7 from a fresh state that the
# failing run never had, so it would not reproduce.
#
# Everything else a run needs (the teardown thread that shuts wrapped flavors down
# inside the schedule, the collector that stops the scheduler at the first violation,
# the final check, the hooks installed around every run and restored after it, what
# a deadlock, hang or spent budget means) is the harness's, shared with the stress
# runner: see ``rcu_pgdat/harness/run.py`` and ``session.py``. This module keeps the
# pytest side: options, marker, fixtures, and the failure text.
#
# Time. A controlled run must never depend on the wall clock; the only wall-clock
# bound is the scheduler's ``hang_timeout`` (a thread that reaches no schedule point),
# which the plugin keeps below pytest-timeout's limit so that the harness, not the
# killer, reports the stall.

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest

from . import sched
from .check import Collector, Oracles, TrackedAllocator, Violation
from .errors import UsageError
from .harness import (STRESS, TEARDOWN, CheckedRCU, CheckedSRCU, Limits, Run, Session,
                      StoppingCollector, execute, parse_seeds, seed_span, seeded_modes,
                      settle, step_budget)
from .harness.modes import describe as describe_modes
from .harness.run import B, Body

__all__ = [
    "DEFAULT_SEEDS",
    "DEFAULT_STEPS",
    "MODES",
    "TEARDOWN",
    "RCUHarness",
    "hang_timeout_for",
    "parse_seeds",
    "rcu_harness",
    "rcu_seed",
]

#: The ``--rcu-sched`` values: free-running stress, and the seeded controlled modes.
MODES = seeded_modes(free=(STRESS,))
#: The default ``--rcu-sched``.
DEFAULT_MODE = sched.SWEEP_DEFAULT
#: Seeds run when neither ``--rcu-seeds`` nor a marker says otherwise (``0-9``).
DEFAULT_SEEDS = range(10)
#: The default ``--rcu-steps``.
DEFAULT_STEPS = 10_000
#: Wall-clock seconds a thread may run without a schedule point (lowered under
#: pytest-timeout, see the module docstring).
DEFAULT_HANG_TIMEOUT = 5.0
#: The entry point's plugin name (``pytest11: rcu_pgdat = rcu_pgdat.pytest_plugin``).
ENTRY_POINT = "rcu_pgdat"

#: What ``run()`` takes: builds a run's state, registers (or returns) its threads.
Setup = Callable[["RCUHarness"], "Mapping[str, Body] | None"]
#: For messages: ``0-9`` for a contiguous run of seeds, else the list.
_span = seed_span


# -- settings ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Settings:
    """The command line, parsed once per session (kept in ``config.stash``)."""

    mode: str
    steps: int
    seeds: tuple[int, ...] | None     # None: --rcu-seeds not given
    intercept: bool = True
    instrument: tuple[str, ...] = ()


_SETTINGS = pytest.StashKey[_Settings]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--rcu-sched``, ``--rcu-seeds``, ``--rcu-steps``, ``--rcu-no-intercept``,
    ``--rcu-instrument``."""
    group = parser.getgroup("rcu-pgdat", "RCU torture tests (rcu_harness fixture, "
                                         "rcu_sweep marker)")
    group.addoption("--rcu-sched", choices=MODES, default=DEFAULT_MODE,
                    help=f"scheduler of rcu_harness runs ({describe_modes(MODES)}); "
                         f"default {DEFAULT_MODE}")
    group.addoption("--rcu-seeds", metavar="A-B", default=None,
                    help=f"seeds to run, inclusive (overrides rcu_sweep markers); "
                         f"default {_span(tuple(DEFAULT_SEEDS))}")
    group.addoption("--rcu-steps", metavar="N", type=int, default=DEFAULT_STEPS,
                    help=f"step budget of one run (h.stopping() turns true there); "
                         f"default {DEFAULT_STEPS}")
    group.addoption("--rcu-no-intercept", action="store_true", default=False,
                    help="controlled runs: leave plain threading/queue/time alone "
                         "(default: they act through the scheduler)")
    group.addoption("--rcu-instrument", metavar="MODULE[,MODULE...]", default=None,
                    help="controlled runs: schedule points at the shared accesses of "
                         "these modules")


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and validate the options once."""
    config.addinivalue_line(
        "markers", "rcu_sweep(seeds): one item per seed for a test using rcu_harness "
                   "('A-B' inclusive, or an iterable of ints); --rcu-seeds overrides")
    raw = config.getoption("rcu_seeds")
    steps = config.getoption("rcu_steps")
    try:
        seeds = None if raw is None else parse_seeds(raw)
    except UsageError as exc:
        raise pytest.UsageError(f"--rcu-seeds: {exc}") from None
    if steps < 1:
        raise pytest.UsageError(f"--rcu-steps must be a positive number of steps, got {steps}")
    instrument = _modules(config.getoption("rcu_instrument"))
    config.stash[_SETTINGS] = _Settings(config.getoption("rcu_sched"), steps, seeds,
                                        not config.getoption("rcu_no_intercept"), instrument)


def _modules(raw: str | None) -> tuple[str, ...]:
    """``--rcu-instrument``'s module names (a usage error for anything else)."""
    if raw is None:
        return ()
    names = tuple(n.strip() for n in raw.split(","))
    for name in names:
        if not name or not all(part.isidentifier() for part in name.split(".")):
            raise pytest.UsageError(f"--rcu-instrument: not a module name: {name!r}")
    return names


def pytest_report_header(config: pytest.Config) -> str:
    """The settings, echoed at the start (as rcutorture does)."""
    s = config.stash[_SETTINGS]
    seeds = (_span(tuple(DEFAULT_SEEDS)) + " (rcu_sweep markers choose their own)"
             if s.seeds is None else _span(s.seeds))
    return f"rcu-pgdat: --rcu-sched {s.mode} --rcu-steps {s.steps} --rcu-seeds {seeds}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``rcu_sweep``: parametrize ``rcu_seed``, one item (``[rcu-seed-N]``) per seed."""
    marker = metafunc.definition.get_closest_marker("rcu_sweep")
    if marker is None:
        return
    if "rcu_seed" not in metafunc.fixturenames:
        pytest.fail(f"{metafunc.definition.nodeid}: @pytest.mark.rcu_sweep needs the "
                    "rcu_harness fixture (the sweep gives each item's seed to it)",
                    pytrace=False)
    given = metafunc.config.stash[_SETTINGS].seeds
    if given is None:
        if len(marker.args) + len(marker.kwargs) != 1 or (
                marker.kwargs and "seeds" not in marker.kwargs):
            pytest.fail(f"{metafunc.definition.nodeid}: write @pytest.mark.rcu_sweep("
                        "seeds=...) with 'A-B' or an iterable of ints", pytrace=False)
        spec = marker.args[0] if marker.args else marker.kwargs["seeds"]
        try:
            given = parse_seeds(spec)
        except UsageError as exc:
            pytest.fail(f"{metafunc.definition.nodeid}: rcu_sweep: {exc}", pytrace=False)
    metafunc.parametrize("rcu_seed", given, ids=[f"rcu-seed-{s}" for s in given])


def _pytest_timeout(item: pytest.Item) -> float | None:
    """The test's pytest-timeout limit in seconds (``None``: none), as that plugin
    looks it up: marker, ``--timeout``, ``PYTEST_TIMEOUT``, ini ``timeout``."""
    marker = item.get_closest_marker("timeout")
    raw: Any = None
    if marker is not None:
        raw = marker.args[0] if marker.args else marker.kwargs.get("timeout")
    if raw is None:
        raw = item.config.getoption("timeout", None)
    if raw is None:
        raw = os.environ.get("PYTEST_TIMEOUT") or None
    if raw is None:
        try:
            raw = item.config.getini("timeout") or None
        except ValueError:              # pytest-timeout is not installed
            raw = None
    try:
        value = float(raw) if raw is not None else 0.0
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def hang_timeout_for(limit: float | None) -> float:
    """The scheduler's ``hang_timeout`` under a pytest-timeout ``limit`` (seconds).

    A hang is reported ``h = hang_timeout`` after the last hand-over; then the
    scheduler gives the stuck thread ``max(1 s, h)`` to return. Invariant: for a limit
    of 2 s or more, ``h + max(1 s, h) <= limit - 0.5 s``, so the harness's report comes
    before pytest-timeout's kill. ``limit / 4``, the obvious choice, forgets the join:
    under a 1.2 s limit it reports at 0.3 s and returns at 1.3 s, killed.
    """
    if limit is None:
        return DEFAULT_HANG_TIMEOUT
    return min(DEFAULT_HANG_TIMEOUT, max(0.1, (limit - 1.0) / 3))


def _reproduce_prefix(config: pytest.Config) -> list[str]:
    """How the plugin was loaded, so that the reproduce line loads it the same way."""
    words: list[str] = []
    if config.invocation_params.dir != config.rootpath:
        words += ["cd", shlex.quote(str(config.rootpath)), "&&"]
    words.append("pytest")
    if config.pluginmanager.get_name(sys.modules[__name__]) != ENTRY_POINT:
        words += ["-p", f"no:{ENTRY_POINT}", "-p", __name__]
    return words


@pytest.fixture
def rcu_seed() -> int | None:
    """The seed of an ``rcu_sweep`` item; ``None`` for a test without the marker."""
    return None


@pytest.fixture
def rcu_harness(request: pytest.FixtureRequest, rcu_seed: int | None) -> RCUHarness:
    """The torture harness for this test (see the module docstring)."""
    settings = request.config.stash[_SETTINGS]
    if rcu_seed is not None:
        seeds: tuple[int, ...] = (rcu_seed,)
    else:
        seeds = settings.seeds if settings.seeds is not None else tuple(DEFAULT_SEEDS)
    nodeid = request.node.nodeid
    quoted = shlex.quote(nodeid) if "'" in nodeid else f"'{nodeid}'"
    prefix = " ".join([*_reproduce_prefix(request.config), quoted])
    return RCUHarness(mode=settings.mode, seeds=seeds, steps=settings.steps,
                      hang_timeout=hang_timeout_for(_pytest_timeout(request.node)),
                      reproduce=prefix, intercept=settings.intercept,
                      instrument=settings.instrument)


# -- one run's state -------------------------------------------------------------------


class _CountingStress(sched.StressScheduler):
    """Stress scheduling that counts each thread's own schedule points (its budget)."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self._count = threading.local()     # per thread: no lock, no shared counter

    def point(self, label: str) -> None:
        self._count.n = getattr(self._count, "n", 0) + 1
        super().point(label)

    def points(self) -> int:
        """Schedule points the calling thread has passed."""
        return int(getattr(self._count, "n", 0))


class _Run(Run):
    """One seed's run: the harness's run, plus the tracked allocator, the seed, and
    whether setup is still registering (``share``: each thread's point budget in
    stress mode)."""

    def __init__(self, seed: int) -> None:
        super().__init__(Oracles(StoppingCollector()))
        self.seed = seed
        self.alloc = TrackedAllocator(self.oracles)
        self.setting_up = True
        self.share = 1


# -- the harness ----------------------------------------------------------------------------


class RCUHarness:
    """Runs a test's own threads per seed under the chosen scheduler; see the module doc.

    Built by the ``rcu_harness`` fixture; ``reproduce`` is the start of the reproduce
    line (``pytest 'node id'`` and how to load the plugin).
    """

    def __init__(self, *, mode: str, seeds: str | int | Iterable[int], steps: int,
                 hang_timeout: float = DEFAULT_HANG_TIMEOUT,
                 reproduce: str = "pytest", intercept: bool = True,
                 instrument: Iterable[str] = ()) -> None:
        if mode not in MODES:
            raise UsageError(f"unknown scheduling mode {mode!r}; choose one of "
                             f"{', '.join(MODES)}")
        if steps < 1:
            raise UsageError(f"steps must be positive, got {steps}")
        self.mode = mode
        self.seeds = parse_seeds(seeds)
        self.steps = steps
        self.hang_timeout = hang_timeout
        self.intercept = intercept
        self.instrument = tuple(instrument)
        self.reproduce_prefix = reproduce
        self._run: _Run | None = None
        self._in_run = False

    # -- the current run ------------------------------------------------------------

    def _current(self, what: str) -> _Run:
        if self._run is None:
            raise UsageError(f"rcu_harness.{what} exists only inside run(): use it in the "
                             "setup function passed to run() and in the thread bodies")
        return self._run

    def _setting_up(self, what: str) -> _Run:
        run = self._current(what)
        if not run.setting_up:
            raise UsageError(f"rcu_harness.{what} after setup returned: register threads, "
                             "checks and flavors inside the setup function (it runs again "
                             "for every seed, so that each run starts fresh)")
        return run

    @property
    def seed(self) -> int:
        """The seed of the current (or last) run."""
        return self._current("seed").seed

    @property
    def collector(self) -> Collector:
        """The current (or last) run's violation collector."""
        return self._current("collector").collector

    @property
    def oracles(self) -> Oracles:
        """The current (or last) run's oracles (``deref``, ``retire``, sections...)."""
        return self._current("oracles").oracles

    @property
    def alloc(self) -> TrackedAllocator:
        """The current (or last) run's tracked allocator, for RCU-protected objects."""
        return self._current("alloc").alloc

    # -- what setup calls ------------------------------------------------------------

    def spawn(self, name: str, body: B) -> B:
        """Register thread ``name`` running ``body`` (setup only); returns ``body``."""
        return self._setting_up("spawn()").spawn(name, body)

    def thread(self, name: str) -> Callable[[B], B]:
        """Decorator form of :meth:`spawn`: ``@h.thread("reader-0")``."""
        def register(body: B) -> B:
            return self.spawn(name, body)
        return register

    def check(self, fn: B) -> B:
        """Run ``fn()`` after every thread finished (setup only); returns ``fn``."""
        self._setting_up("check()").checks.append(fn)
        return fn

    def checked(self, flavor: Any, *, srcu: bool | None = None) -> Any:
        """``flavor`` wrapped so that the oracles see it: a ``CheckedRCU``, or a
        ``CheckedSRCU`` for an SRCU domain (``srcu=None``: one with ``call_srcu``).

        Setup only; the teardown thread shuts it down after the test's threads.
        """
        run = self._setting_up("checked()")
        if isinstance(flavor, type):
            raise UsageError(f"checked({flavor.__name__}): pass an instance, e.g. "
                             f"checked({flavor.__name__}()), built inside setup")
        if srcu is None:
            srcu = callable(getattr(flavor, "call_srcu", None))
        if srcu:
            domain = CheckedSRCU(flavor, run.oracles)
            run.shutdowns.append(domain.cleanup)
            return domain
        wrapped = CheckedRCU(flavor, run.oracles)
        run.shutdowns.append(wrapped.shutdown)
        return wrapped

    def stopping(self) -> bool:
        """Whether a thread that loops should stop: budget spent, or a violation."""
        run = self._current("stopping()")
        if run.collector.stopped:
            return True
        active = sched.active()
        if isinstance(active, _CountingStress):
            return active.points() >= run.share
        return sched.now() >= self.steps

    # -- running ---------------------------------------------------------------------------

    def run(self, setup: Setup) -> list[sched.RunResult]:
        """Run ``setup``'s threads once per seed; ``pytest.fail`` at the first failure."""
        if self._in_run:
            raise UsageError("rcu_harness.run() inside a run: call it from the test body")
        if not callable(setup):
            raise UsageError(f"run() takes a setup function (h) -> threads, got {setup!r}")
        self._in_run = True
        try:
            results: list[sched.RunResult] = []
            options: dict[str, Any] = {}
            for seed in self.seeds:
                if not options:
                    options = self._strategy_options(setup, seed)
                result = self._one(setup, seed, options)
                violation = settle(self._current("run()"), result, budget_hint=(
                    "A thread that loops must end when h.stopping() says so; a longer "
                    "program needs a larger --rcu-steps."))
                if violation is not None:
                    pytest.fail(self._failure_text(seed, len(results), result, violation),
                                pytrace=False)
                results.append(result)
            return results
        finally:
            self._in_run = False

    def _limits(self) -> Limits:
        return Limits(max_steps=step_budget(self.steps), hang_timeout=self.hang_timeout,
                      intercept=self.intercept, instrument=self.instrument)

    def _strategy_options(self, setup: Setup, seed: int) -> dict[str, Any]:
        """The strategy's options: the run length, for a seed whose strategy spreads
        something over it (PCT's change points), measured by one run under
        ``RandomStrategy(0)`` (deterministic, so a seed still gives the same run); empty
        while the seeds run need none, so that a program that fails at once is not run an
        extra time first."""
        spec = sched.STRATEGIES.get(self.mode)
        if spec is None or not spec.needs_steps_for(seed):
            return {}
        session = self._session(setup, 0)
        with session.active():
            return {"steps": sched.calibrate_steps(session.program, **self._limits().options())}

    def _one(self, setup: Setup, seed: int, options: dict[str, Any]) -> sched.RunResult:
        session = self._session(setup, seed)
        if self.mode == STRESS:
            with session.active():
                return sched.run_free(session.program, _CountingStress(seed),
                                      timeout=self.hang_timeout)
        return execute(session, self.mode, seed, self._limits(), options).result

    def _session(self, setup: Setup, seed: int) -> Session:
        def build() -> Run:
            run = _Run(seed)
            self._run = run
            try:
                returned = setup(self)
                if returned is not None:
                    if not isinstance(returned, Mapping):
                        raise UsageError("setup must return None or a {name: body} "
                                         f"mapping, got {type(returned).__name__}")
                    for name, body in returned.items():
                        self.spawn(name, body)
            finally:
                run.setting_up = False
            if not run.threads:
                raise UsageError("setup registered no threads: call h.spawn(name, body) "
                                 "or decorate bodies with @h.thread(name)")
            run.share = max(1, self.steps // len(run.threads))
            return run
        return Session(build)

    def _failure_text(self, seed: int, passed: int, result: sched.RunResult,
                      violation: Violation) -> str:
        head = (f"rcu_harness: seed {seed} failed under --rcu-sched {self.mode} "
                f"({passed} earlier seed(s) of {_span(self.seeds)} passed): {violation.title}")
        parts = [head, violation.format()]
        if result.trace is not None:
            parts.append(f"Interleaving of seed {seed} ({result.steps} steps), its end:\n"
                         f"{result.table()}")
            why = result.explanation(violation.thread)
            if why:
                parts.append(why)
        else:
            parts.append("(stress mode: the threads ran free, so there is no schedule to "
                         "show and a re-run may interleave differently; a controlled --rcu-sched "
                         f"({sched.SWEEP_DEFAULT}, random, ...) runs one thread at a time "
                         "and replays a seed exactly)")
        parts.append(f"reproduce: {self.reproduce_prefix} --rcu-sched {self.mode} "
                     f"--rcu-seeds {seed}-{seed} --rcu-steps {self.steps}"
                     + ("" if self.intercept else " --rcu-no-intercept")
                     + (f" --rcu-instrument {','.join(self.instrument)}"
                        if self.instrument else ""))
        return "\n".join(parts)

    def __repr__(self) -> str:
        return (f"<RCUHarness --rcu-sched {self.mode} --rcu-seeds {_span(self.seeds)} "
                f"--rcu-steps {self.steps} hang_timeout={self.hang_timeout:g}s>")
