"""The mutant catalogue: named known-bad variants that the harness must catch.

rcutorture ships a deliberately broken RCU to prove that the torture test can fail; this
catalogue does the same for every component. A mutant arrives the way a user's broken
code would: a subclass plugged in where a plug-in goes (an RCU flavor, an SRCU domain,
a lock), a model component passed to ``System`` (the remover, the page allocator, the
mempolicy notifier, a scheme), or a reader loop that replaces a worker kind's body. The
correct code has no ``if mutant:`` branch anywhere.

Each entry says which component it breaks, the bug in one line, and the violation kinds
(and, for ``bug`` reports, which check's words) that catching it must produce.
``rcu-pgdat-stress --inject NAME`` runs one (repeatable), ``--list-mutants`` prints the
table, and ``rcu-pgdat-stress mutants`` runs the whole catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..check import Kind
from ..mm._broken import MUTANTS as _MM_VARIANTS
from ..rcu._srcu_mutants import SRCUSkipOldIndex
from . import _rcu, _readers

__all__ = ["Mutant", "MUTANTS", "describe", "catalogue_config"]

_GP = (Kind.GP_TOO_SHORT, Kind.USE_AFTER_FREE, Kind.STALE_GENERATION)
#: A grace period that can never end: the counters it waits on are off for good. The
#: domain notices a reader it believes exited inside a section (its own check raises in
#: the updater), or the watchdog / controlled scheduler sees the wait never end.
_STUCK = (Kind.STALL, Kind.LIVELOCK, Kind.DEADLOCK, Kind.THREAD_EXCEPTION, Kind.GP_TOO_SHORT)


@dataclass(frozen=True)
class Mutant:
    """One known-bad variant and what the harness must report for it.

    ``needs``: run parameters it requires (``RunConfig`` fields and values; a count
    field means "at least"). ``config``: further parameters that make it show sooner
    (the catalogue runs use them; ``--inject`` leaves the run as the flags say).
    ``flavor_cls``/``srcu_cls`` replace the RCU flavor or the
    SRCU domain; ``system_kwargs`` plug model classes into ``System``; ``workers``
    replace the loop of a worker kind.
    """

    name: str
    component: str
    bug: str
    kinds: tuple[Kind, ...]
    subject: str = ""
    needs: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    flavor_cls: type | None = None
    srcu_cls: type | None = None
    system_kwargs: dict[str, Any] = field(default_factory=dict)
    workers: dict[str, Callable[..., None]] = field(default_factory=dict)

    def caught_by(self, kind: str, subject: str) -> bool:
        """Whether a violation of ``kind`` about ``subject`` is the one this bug causes."""
        return kind in self.kinds and (kind != Kind.BUG or self.subject in subject)

    @property
    def expected(self) -> str:
        """The kinds it must cause, for tables (``bug (numa_node_id)``)."""
        text = "/".join(k.value for k in self.kinds)
        return f"{text} ({self.subject})" if self.subject else text


def _mm_mutant(name: str, component: str) -> Mutant:
    v = _MM_VARIANTS[name]
    needs: dict[str, Any] = {"scheme": v.scheme}
    if name == "posted":
        needs["sleepers"] = 1
    return Mutant(name, component, v.bug, v.kinds, v.subject, needs,
                  system_kwargs=v.system_kwargs())


def _with_config(mutant: Mutant, **config: Any) -> Mutant:
    return Mutant(mutant.name, mutant.component, mutant.bug, mutant.kinds, mutant.subject,
                  mutant.needs, {**mutant.config, **config}, mutant.flavor_cls,
                  mutant.srcu_cls, mutant.system_kwargs, mutant.workers)


def _doc(cls: Any) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0]


_ENTRIES: list[Mutant] = [
    # -- the synchronization under test (plug-in flavors and domains) ------------------
    Mutant("rcu-gp-nowait", "rcu", _doc(_rcu.NoWaitQSBR), _GP, needs={"flavor": "qsbr"},
           flavor_cls=_rcu.NoWaitQSBR),
    Mutant("qsbr-qs-in-reader", "rcu", _doc(_rcu.QSInReaderQSBR), _GP,
           needs={"flavor": "qsbr"}, flavor_cls=_rcu.QSInReaderQSBR),
    Mutant("memb-single-flip", "rcu", _doc(_rcu.SingleFlipMemb), _GP,
           needs={"flavor": "memb"}, flavor_cls=_rcu.SingleFlipMemb,
           # a reader preempted between loading the phase and storing it, across a whole
           # grace period, then a second one: fewer threads make that window common
           # (and PCT needs more than two change points: the window is one step in
           # thousands)
           config={"allocators": 0, "policy_users": 0, "sleepers": 0, "iterators": 1,
                   "fake_writers": 2, "nodes": 2, "cpus": 2, "steps": 2000,
                   "pct_depth": 10}),
    Mutant("call-rcu-early", "callbacks", _doc(_rcu.EarlyCallbackQSBR), _GP,
           needs={"flavor": "qsbr", "fake_writers": 1}, flavor_cls=_rcu.EarlyCallbackQSBR),
    Mutant("rcu-barrier-nowait", "callbacks", _doc(_rcu.NoWaitBarrierQSBR), _GP,
           needs={"flavor": "qsbr", "fake_writers": 1}, flavor_cls=_rcu.NoWaitBarrierQSBR),
    Mutant("srcu-skip-old-index", "srcu",
           "SRCU grace period that flips but never waits for the old current index", _GP,
           needs={"sleepers": 1}, srcu_cls=SRCUSkipOldIndex),
    Mutant("srcu-wrong-index-unlock", "srcu", _doc(_rcu.WrongIndexSRCU), _STUCK,
           needs={"sleepers": 1}, srcu_cls=_rcu.WrongIndexSRCU),
    # -- the remover and the model --------------------------------------------------------
    _mm_mutant("free-before-gp", "remover"),
    _mm_mutant("no-zonelist-rebuild", "remover"),
    _mm_mutant("late-unpublish", "remover"),
    _mm_mutant("posted", "remover"),
    _mm_mutant("cpus-left-online", "remover"),
    _mm_mutant("reuse-early-reset", "remover"),
    _mm_mutant("rollback-keeps-isolation", "remover"),
    _mm_mutant("veto-ignored", "remover"),
    _with_config(_mm_mutant("alloc-ignores-isolation", "page allocator"),
                 # only a fallback walk or a bind policy reaches an isolated zone: PCT
                 # needs more change points than its default to send one there
                 pct_depth=10),
    _mm_mutant("free-loses-pages", "page allocator"),
    _mm_mutant("free-twice", "page allocator"),
    _mm_mutant("no-rebind", "mempolicy"),
    _mm_mutant("rwlock-no-write-lock", "scheme"),
    # -- readers ------------------------------------------------------------------------
    Mutant("iterator-unlocked", "reader", _doc(_readers.iterator_unlocked),
           (Kind.RCU_DEREF_OUTSIDE_READER,), needs={"iterators": 1},
           workers={"iterator": _readers.iterator_unlocked}),
    Mutant("sleeper-non-sleepable", "reader", _doc(_readers.sleeper_atomic),
           (Kind.SLEEP_IN_ATOMIC,), needs={"sleepers": 1},
           workers={"sleeper": _readers.sleeper_atomic}),
    Mutant("reader-keeps-pointer", "reader", _doc(_readers.iterator_keeps_pointer),
           (Kind.USE_AFTER_FREE, Kind.STALE_GENERATION), needs={"iterators": 1},
           workers={"iterator": _readers.iterator_keeps_pointer}),
]


#: name -> mutant, in catalogue order.
MUTANTS: dict[str, Mutant] = {m.name: m for m in _ENTRIES}


def catalogue_config(mutant: Mutant) -> dict[str, Any]:
    """The run parameters the catalogue uses for ``mutant``: its needs and hints."""
    return {**mutant.needs, **mutant.config, "inject": (mutant.name,)}


def describe() -> str:
    """The table ``--list-mutants`` prints: name, component, bug, expected kind."""
    rows = [("NAME", "COMPONENT", "MUST CAUSE", "BUG")]
    rows += [(m.name, m.component, m.expected, m.bug) for m in MUTANTS.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}"
                     for r in rows)
