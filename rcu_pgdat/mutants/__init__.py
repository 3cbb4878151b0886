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
from ..mm.hotplug import PostedRemover
from . import mm, readers, rcu
from .srcu import SRCUSharedFlip, SRCUSkipOldIndex

__all__ = ["Mutant", "MUTANTS", "describe", "catalogue_config"]

_GP = (Kind.GP_TOO_SHORT, Kind.USE_AFTER_FREE, Kind.STALE_GENERATION)
_UAF = (Kind.USE_AFTER_FREE,)
#: A grace period that can never end: the counters it waits on are off for good. The
#: domain notices a reader it believes exited inside a section (its own check raises in
#: the updater), or the watchdog / controlled scheduler sees the wait never end.
_STUCK = (Kind.STALL, Kind.LIVELOCK, Kind.DEADLOCK, Kind.THREAD_EXCEPTION, Kind.GP_TOO_SHORT)


@dataclass(frozen=True)
class Mutant:
    """One known-bad variant and what the harness must report for it.

    ``needs``: what the variant structurally requires of a run (``RunConfig`` fields
    and values; a count field means "at least": a sleeper for a bug only sleepers can
    show, the scheme whose class it replaces). Nothing else: the catalogue runs each
    mutant with what a user gets by default, so a mutant the defaults miss is a gap of
    the harness, never a reason to tune the mutant's run. ``flavor_cls``/``srcu_cls``
    replace the RCU flavor or the SRCU domain; ``system_kwargs`` plug model classes into
    ``System`` (``remover_cls``, ``page_allocator_cls``, ``policy_notifier_cls``,
    ``scheme_cls``); ``workers`` replace the loop of a worker kind.
    """

    name: str
    component: str
    bug: str
    kinds: tuple[Kind, ...]
    subject: str = ""
    needs: dict[str, Any] = field(default_factory=dict)
    flavor_cls: type | None = None
    srcu_cls: type | None = None
    system_kwargs: dict[str, type] = field(default_factory=dict)
    workers: dict[str, Callable[..., None]] = field(default_factory=dict)

    def caught_by(self, kind: str, subject: str) -> bool:
        """Whether a violation of ``kind`` about ``subject`` is the one this bug causes."""
        return kind in self.kinds and (kind != Kind.BUG or self.subject in subject)

    @property
    def expected(self) -> str:
        """The kinds it must cause, for tables (``bug (numa_node_id)``)."""
        text = "/".join(k.value for k in self.kinds)
        return f"{text} ({self.subject})" if self.subject else text


def _doc(obj: Any) -> str:
    return (obj.__doc__ or "").strip().splitlines()[0]


def _model(name: str, component: str, slot: str, cls: type, kinds: tuple[Kind, ...],
           subject: str = "", scheme: str = "rcu", **needs: Any) -> Mutant:
    """A broken model class plugged into ``System`` as ``slot`` (``remover_cls``, ...)."""
    return Mutant(name, component, _doc(cls), kinds, subject, {"scheme": scheme, **needs},
                  system_kwargs={slot: cls})


def _updater(name: str, component: str, cls: type) -> Mutant:
    """An updater-side QSBR bug: it needs a fake writer beside the remover."""
    return Mutant(name, component, _doc(cls), _GP, needs={"flavor": "qsbr", "fake_writers": 1},
                  flavor_cls=cls)


_ENTRIES: list[Mutant] = [
    # -- the synchronization under test (plug-in flavors and domains) ------------------
    Mutant("rcu-gp-nowait", "rcu", _doc(rcu.NoWaitQSBR), _GP, needs={"flavor": "qsbr"},
           flavor_cls=rcu.NoWaitQSBR),
    Mutant("qsbr-qs-in-reader", "rcu", _doc(rcu.QSInReaderQSBR), _GP,
           needs={"flavor": "qsbr"}, flavor_cls=rcu.QSInReaderQSBR),
    Mutant("memb-single-flip", "rcu", _doc(rcu.SingleFlipMemb), _GP,
           needs={"flavor": "memb"}, flavor_cls=rcu.SingleFlipMemb),
    Mutant("call-rcu-early", "callbacks", _doc(rcu.EarlyCallbackQSBR), _GP,
           needs={"flavor": "qsbr", "fake_writers": 1}, flavor_cls=rcu.EarlyCallbackQSBR),
    Mutant("rcu-barrier-nowait", "callbacks", _doc(rcu.NoWaitBarrierQSBR), _GP,
           needs={"flavor": "qsbr", "fake_writers": 1}, flavor_cls=rcu.NoWaitBarrierQSBR),
    # updater-side bugs: each shows only with two updaters at once (the remover and a
    # fake writer, or a fake writer and the callback worker)
    _updater("rcu-gp-shared-early", "rcu", rcu.SharedGPQSBR),
    _updater("rcu-cookie-early", "rcu", rcu.EarlyCookieQSBR),
    _updater("cond-sync-stale-cookie", "rcu", rcu.StaleCookieQSBR),
    _updater("call-rcu-joins-gp", "callbacks", rcu.CallbackJoinsGPQSBR),
    Mutant("srcu-shared-flip", "srcu", _doc(SRCUSharedFlip), _GP,
           needs={"sleepers": 1, "fake_writers": 1}, srcu_cls=SRCUSharedFlip),
    Mutant("srcu-skip-old-index", "srcu", _doc(SRCUSkipOldIndex), _GP,
           needs={"sleepers": 1}, srcu_cls=SRCUSkipOldIndex),
    Mutant("srcu-wrong-index-unlock", "srcu", _doc(rcu.WrongIndexSRCU), _STUCK,
           needs={"sleepers": 1}, srcu_cls=rcu.WrongIndexSRCU),
    # -- the remover and the model --------------------------------------------------------
    _model("free-before-gp", "remover", "remover_cls", mm.FreeBeforeGraceRemover, _UAF),
    _model("no-zonelist-rebuild", "remover", "remover_cls", mm.NoZonelistRebuildRemover,
           _UAF),
    _model("late-unpublish", "remover", "remover_cls", mm.LateUnpublishRemover, _UAF),
    # only sleepers (SRCU readers) are not waited for by the RFC's synchronize_sched()
    _model("posted", "remover", "remover_cls", PostedRemover, _UAF, sleepers=1),
    _model("cpus-left-online", "remover", "remover_cls", mm.CpusLeftOnlineRemover,
           (Kind.BUG,), "numa_node_id"),
    _model("reuse-early-reset", "remover", "remover_cls", mm.ReuseEarlyResetRemover,
           (Kind.STALE_GENERATION, Kind.USE_AFTER_FREE, Kind.BUG), "alloc_pages",
           scheme="reuse"),
    _model("rollback-keeps-isolation", "remover", "remover_cls",
           mm.RollbackKeepsIsolationRemover, (Kind.BUG,), "rollback"),
    _model("veto-ignored", "remover", "remover_cls", mm.VetoIgnoredRemover, (Kind.BUG,),
           "mempolicy"),
    _model("alloc-ignores-isolation", "page allocator", "page_allocator_cls",
           mm.IgnoreIsolationAllocator, (Kind.BUG,), "isolated"),
    _model("free-loses-pages", "page allocator", "page_allocator_cls",
           mm.LosingFreeAllocator, (Kind.BUG,), "not conserved"),
    _model("free-twice", "page allocator", "page_allocator_cls", mm.DoubleFreeAllocator,
           (Kind.DOUBLE_FREE,)),
    _model("no-rebind", "mempolicy", "policy_notifier_cls", mm.NoRebindNotifier,
           (Kind.BUG,), "mempolicy"),
    _model("rwlock-no-write-lock", "scheme", "scheme_cls", mm.NoWriteLockScheme,
           (Kind.GP_TOO_SHORT, Kind.USE_AFTER_FREE), scheme="rwlock"),
    # -- readers ------------------------------------------------------------------------
    Mutant("iterator-unlocked", "reader", _doc(readers.iterator_unlocked),
           (Kind.RCU_DEREF_OUTSIDE_READER,), needs={"iterators": 1},
           workers={"iterator": readers.iterator_unlocked}),
    Mutant("sleeper-non-sleepable", "reader", _doc(readers.sleeper_atomic),
           (Kind.SLEEP_IN_ATOMIC,), needs={"sleepers": 1},
           workers={"sleeper": readers.sleeper_atomic}),
    Mutant("reader-keeps-pointer", "reader", _doc(readers.iterator_keeps_pointer),
           (Kind.USE_AFTER_FREE, Kind.STALE_GENERATION), needs={"iterators": 1},
           workers={"iterator": readers.iterator_keeps_pointer}),
]


#: name -> mutant, in catalogue order.
MUTANTS: dict[str, Mutant] = {m.name: m for m in _ENTRIES}


def catalogue_config(mutant: Mutant) -> dict[str, Any]:
    """The run parameters the catalogue uses for ``mutant``: the defaults, its needs.

    Only the needs that name something (a scheme, a flavor) are values; a count need
    ("at least one sleeper") is a requirement the run's validation checks, never a
    value: passed as one, it would *lower* a larger default.
    """
    return {**{key: value for key, value in mutant.needs.items() if not isinstance(value, int)},
            "inject": (mutant.name,)}


def describe() -> str:
    """The table ``--list-mutants`` prints: name, component, bug, expected kind."""
    rows = [("NAME", "COMPONENT", "MUST CAUSE", "BUG")]
    rows += [(m.name, m.component, m.expected, m.bug) for m in MUTANTS.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}"
                     for r in rows)
