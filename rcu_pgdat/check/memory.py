"""Tracked memory: KASAN for the model's freeable objects (docs/design.md, invariant 5).

What it guarantees
------------------
Every field of a tracked object (a pgdat, a zone, a zonelist, anything a reader reaches
through an RCU pointer) is a checked property. A read or write is reported, with a
sanitizer-style report, when it touches an object that is freed or being
re-initialized, when it *overlaps* a free, or when it goes through a reference to an
earlier generation of the object.

The life word
-------------
Each object has one int, ``_life = generation << 2 | phase`` (phase: initializing,
live, freed). Packing both into one attribute makes every transition a single store,
so a racing reader never sees a new phase with an old generation or the reverse.

Why a read that overlaps a free is caught
-----------------------------------------
A checked read loads the value first and the life word second (A); ``free()`` stores
the new life word first and poisons the fields second (B, pairs with A). So:

* if the reader's life load comes after B's first store, it sees "freed": reported,
  even when the value it loaded was still the real one (the read began before the
  free and ended after it: an overlap);
* otherwise both of its loads came before the free began: a clean read, not reported.

The obvious simpler version, "check the state, then read the value", is wrong::

    reader: state is live                       remover: free(): state = freed,
                                                         fields poisoned
    reader: value = field   -> poison or a value of the freed object, returned

and so is a free that poisons first and flips the state last: a reader that loads a
not-yet-poisoned field and then the still-live state passes while the free is under
way. With orders A and B the poison test is redundant for soundness; it is kept
because it costs one identity test and still catches a variant of ``free()`` that gets
the order wrong. There is no schedule point inside a check: in controlled mode a
checked access is atomic, and every interleaving free-running mode can produce with a
free inside a check has a controlled twin where the free comes just before the load,
which is caught. The model puts its own ``sched.point()`` calls around its accesses.

Stale generations: references remember what they saw
----------------------------------------------------
A raw object only knows its current generation, so a pointer kept across a
re-initialization (the model's *reuse* scheme resets a pgdat in place on re-online)
would read the new generation's fields silently. :meth:`Oracles.deref` therefore hands
readers a *reference* (:func:`ref_to`): an instance of a generated subclass of the
object's class that holds the target and the life word it saw. Its field properties
compare the whole life word (``!=``, one test) after loading the value, so they catch a
free *and* a newer generation, like the pointer tags of KASAN's tag-based modes. Being
a subclass, a reference passes ``isinstance`` and runs the class's methods through
checked fields; ``==`` compares targets. Raw objects (the writer's own, or one reached
from a reference's field) are checked for liveness only: deref what a reader follows.

Quarantine
----------
A freed object keeps its phase "freed" for as long as anything refers to it, so in
Python every later touch is caught. The bounded quarantine keeps the most recent
``quarantine`` freed objects with their full allocation and free stacks; an object
that leaves it keeps its poison and phase (still caught) but drops its stacks, which is
what bounds the memory of a long run.

Locks: ``TrackedAllocator._lock`` guards the allocator's tables, every object's
``_meta`` and every ``_life`` store; it is held only for table updates and the
poisoning loop, never across a call out. Readers take no lock.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from .. import sched
from ..sched import accesses as _accesses
from ..errors import UsageError
from . import _stack
from .kinds import Kind
from .violation import Violation, ViolationError

if TYPE_CHECKING:
    from .oracles import Oracles

__all__ = [
    "POISON",
    "Tracked",
    "TrackedAllocator",
    "generation",
    "is_live",
    "new_ref",
    "ref_to",
    "unwrap",
]

T = TypeVar("T", bound="Tracked")


class _Poison:
    """The value every field of a freed object holds."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<poison>"


POISON: Any = _Poison()

# The phase part of the life word.
_INIT, _LIVE, _FREED = 0, 1, 2
_PHASE = 3
_PHASE_NAMES = {_INIT: "being initialized", _LIVE: "live", _FREED: "freed"}


class _Meta:
    """Where an object came from; written under its allocator's lock."""

    __slots__ = (
        "alloc_stack",
        "alloc_thread",
        "allocator",
        "evicted",
        "free_generation",
        "free_stack",
        "free_thread",
        "label",
    )

    def __init__(self, allocator: TrackedAllocator, label: str, thread: str,
                 stack: _stack.Stack) -> None:
        self.allocator = allocator
        self.label = label
        self.alloc_thread = thread
        self.alloc_stack = stack
        self.free_thread: str | None = None
        self.free_stack: _stack.Stack = ()
        self.free_generation = 0
        self.evicted = False        # left the quarantine: stacks dropped


# -- checked fields ------------------------------------------------------------------


# The accessors are made from source, one pair per field, with the field's index and
# name as constants, rather than as closures over them. Same checks, same order; the
# reason is the free-threaded build (3.13t): a function defined at the top level of
# its code is immortal there, so every reader calling it touches no shared reference
# count, while a closure, and each cell it copies into its frame, is an object every
# reader increfs: with two readers on two CPUs those counts are cache lines written
# by both at every field read (docs/design.md, section 6).

_THIS_FILE = os.path.abspath(__file__)

_RAW_ACCESSORS = """
def fget(obj):
    value = obj._vals[{index}]
    # (A) value loaded before the life word: pairs with (B) in free().
    if _accesses.recording:
        _note(obj, {field!r}, "read")
    if value is POISON or obj._life & {phase} != {live}:
        _hit(obj, {field!r}, value, "Read", None)
    return value

def fset(obj, value):
    if _accesses.recording:
        _note(obj, {field!r}, "write")
    if obj._life & {phase} != {live}:
        _hit(obj, {field!r}, POISON, "Write", None)
    obj._vals[{index}] = value
    # A free between the check and the store may have poisoned first and the store
    # undone the poison: check again, after the store (pairs with (B) in free()).
    if obj._life & {phase} != {live}:
        _hit(obj, {field!r}, value, "Write", None)
"""

_REF_ACCESSORS = """
def fget(ref):
    obj = ref._obj
    value = obj._vals[{index}]
    # (A) as in the raw accessor; the life word now carries the generation too.
    if _accesses.recording:
        _note(obj, {field!r}, "read")
    if value is POISON or obj._life != ref._life:
        _hit(obj, {field!r}, value, "Read", ref._life)
    return value

def fset(ref, value):
    obj = ref._obj
    if _accesses.recording:
        _note(obj, {field!r}, "write")
    if obj._life != ref._life:
        _hit(obj, {field!r}, POISON, "Write", ref._life)
    obj._vals[{index}] = value
    if obj._life != ref._life:
        _hit(obj, {field!r}, value, "Write", ref._life)
"""


def _field_property(source: str, doc: str, field: str, index: int) -> property:
    """A property whose getter and setter are ``source``'s, for ``field`` at ``index``."""
    if not field.isidentifier() or type(index) is not int:
        raise UsageError(f"field {field!r} at {index!r}: not an identifier and an index")
    names: dict[str, Any] = {"_accesses": _accesses, "_note": _note, "_hit": _hit,
                             "POISON": POISON, "__name__": __name__}
    # Compiled as this file's code, so that reports hide the accessor's frame as they
    # hide every frame of the oracles (``_stack``).
    code = compile(source.format(index=index, field=field, phase=_PHASE, live=_LIVE),
                   _THIS_FILE, "exec")
    exec(code, names)  # noqa: S102 - our own template; field checked above
    return property(names["fget"], names["fset"], doc=doc)


def _raw_field(owner: str, field: str, index: int) -> property:
    """The checked property of ``field`` on a tracked class: a liveness check."""
    return _field_property(_RAW_ACCESSORS, f"Checked field {owner}.{field}.", field, index)


def _ref_field(owner: str, field: str, index: int) -> property:
    """The checked property of ``field`` on a reference: the whole life word must match."""
    return _field_property(_REF_ACCESSORS,
                           f"Checked field {owner}.{field} (generation-checked).", field,
                           index)


def _note(obj: Any, field: str, op: str) -> None:
    """Log the access for a controlled run's explanation (caller: a field's accessor)."""
    _accesses.note(op, obj, field, depth=3)


def _hit(obj: Tracked, field: str, value: Any, access: str,
         ref_life: int | None) -> NoReturn:
    """Report a bad access and stop the accessing thread's operation."""
    allocator: TrackedAllocator = obj._meta.allocator
    raise ViolationError(allocator._report_access(obj, field, value, access, ref_life))


# -- the classes ------------------------------------------------------------------------


class _Ref:
    """Marks the generated reference classes (a cheap ``isinstance`` test)."""

    __slots__ = ()
    _obj: Any               # the target (a slot of each generated class)


def _ref_repr(ref: Any) -> str:
    seen = ref._life >> 2
    return f"<ref {_object_text(ref._obj)}, taken at generation {seen}>"


class _TrackedMeta(type):
    """Builds the checked properties of a tracked class and its reference class.

    A class's own fields are its ``__fields__`` or, without one, the public names
    annotated in its body (``ClassVar`` excluded); a subclass adds to its base's.
    ``__slots__`` is set to ``()`` so that no unchecked attribute can be added.
    """

    def __new__(mcls, name: str, bases: tuple[type, ...],
                ns: dict[str, Any]) -> _TrackedMeta:
        if "__ref_for__" in ns:                 # a reference class being built below
            return super().__new__(mcls, name, bases, ns)
        inherited: tuple[str, ...] = ()
        for base in bases:
            base_fields = getattr(base, "__tracked_fields__", ())
            if base_fields and inherited:
                raise UsageError(f"{name}: more than one tracked base declares fields")
            inherited = inherited or base_fields
        if "__slots__" in ns and any(isinstance(b, _TrackedMeta) for b in bases):
            raise UsageError(f"{name}: declare tracked fields in __fields__, not __slots__")
        declared = ns.get("__fields__")
        if declared is None:        # the annotated names of the class body are the fields
            declared = tuple(field for field, hint in ns.get("__annotations__", {}).items()
                             if not field.startswith("_") and "ClassVar" not in str(hint))
        if isinstance(declared, str):
            raise UsageError(f"{name}: __fields__ must be a tuple of names, not a string")
        own = tuple(declared)
        for field in own:
            if field in ns:
                raise UsageError(f"{name}: {field!r} is both a field and a class attribute")
            if not field.isidentifier() or field.startswith("_"):
                raise UsageError(f"{name}: field {field!r} must be a public identifier")
            if field in inherited or own.count(field) > 1:
                raise UsageError(f"{name}: field {field!r} is declared twice")
        ns.setdefault("__slots__", ())
        for index, field in enumerate(own, start=len(inherited)):
            ns[field] = _raw_field(name, field, index)
        ns["__tracked_fields__"] = inherited + own
        cls = super().__new__(mcls, name, bases, ns)
        ref_ns: dict[str, Any] = {
            "__slots__": ("_obj",), "__ref_for__": cls, "__repr__": _ref_repr,
            "__qualname__": f"{cls.__qualname__}Ref", "__module__": cls.__module__}
        for index, field in enumerate(inherited + own):
            ref_ns[field] = _ref_field(name, field, index)
        cls.__ref_class__ = mcls(f"{name}Ref", (cls, _Ref), ref_ns)  # type: ignore[attr-defined]
        return cls


class Tracked(metaclass=_TrackedMeta):
    """Base of every model object that can be freed.

    Declare the fields, never an ``__init__``; allocate with
    :meth:`TrackedAllocator.alloc`. Either annotate them (mypy then knows their
    types) or list them::

        class Zone(Tracked):
            name: str
            free_pages: int

        class Zonelist(Tracked):
            __fields__ = ("node_id", "zonerefs")

    ``repr()`` shows the label, generation and phase. Two objects compare equal when
    they are (or refer to) the same target.
    """

    __slots__ = ("_life", "_meta", "_vals")
    _vals: list[Any]        # field values, in __tracked_fields__ order
    _life: int              # generation << 2 | phase (a reference: what it saw)
    _meta: _Meta
    __fields__: tuple[str, ...] = ()
    __tracked_fields__: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise UsageError(f"allocate {type(self).__name__} with TrackedAllocator.alloc("
                         f"{type(self).__name__}, label, **fields), not by calling it")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tracked):
            return NotImplemented
        return unwrap(self) is unwrap(other)

    def __hash__(self) -> int:
        return object.__hash__(unwrap(self))

    def __repr__(self) -> str:
        return f"<{_object_text(self)}>"


def unwrap(obj: T) -> T:
    """The target of a reference, or ``obj`` itself."""
    return obj._obj if isinstance(obj, _Ref) else obj


def ref_to(obj: T) -> T:
    """A generation-checked reference to ``obj``'s current generation.

    If ``obj`` is not live, the reference remembers the live life word of its
    generation, so its first access is reported. A reference given in is returned as
    is: it keeps the generation it was taken at.
    """
    return obj if isinstance(obj, _Ref) else new_ref(obj)


def new_ref(obj: T) -> T:
    """:func:`ref_to` of a tracked object that is not a reference (the caller knows)."""
    ref = object.__new__(type(obj).__ref_class__)  # type: ignore[attr-defined]
    ref._obj = obj
    ref._life = (obj._life & ~_PHASE) | _LIVE
    return ref


def generation(obj: Tracked) -> int:
    """The generation of ``obj`` (of a reference: the one it was taken at)."""
    return obj._life >> 2


def is_live(obj: Tracked) -> bool:
    """Whether ``obj`` (a reference: its target, at the reference's generation) is live."""
    target = unwrap(obj)
    return target._life == (obj._life & ~_PHASE) | _LIVE


def _state_text(obj: Tracked) -> str:
    """``generation 3, freed, in quarantine`` (never reads a field)."""
    life = getattr(obj, "_life", None)
    meta = getattr(obj, "_meta", None)
    if life is None or meta is None:
        return "not allocated"
    state = _PHASE_NAMES[life & _PHASE]
    if life & _PHASE == _FREED:
        state += ", out of quarantine" if meta.evicted else ", in quarantine"
    return f"generation {life >> 2}, {state}"


def _object_text(obj: Tracked) -> str:
    """``Zone zone[1].Normal generation 3, freed, in quarantine``."""
    meta = getattr(obj, "_meta", None)
    label = f" {meta.label}" if meta is not None else ""
    return f"{type(obj).__name__}{label} {_state_text(obj)}"


# -- the allocator ------------------------------------------------------------------------


class TrackedAllocator:
    """Allocates, frees and re-initializes tracked objects; reports misuse of memory.

    ``_lock`` (a ``threading.Lock``, private) guards ``_generations``, ``_quarantine``,
    ``_serial``, the counters, every object's ``_meta`` and every ``_life`` store. Lock
    order: it is never held while the oracles' or the collector's lock is taken.
    """

    def __init__(self, oracles: Oracles, quarantine: int = 64) -> None:
        if quarantine < 0:
            raise ValueError(f"quarantine must be >= 0, got {quarantine}")
        self.oracles = oracles
        self.quarantine_size = quarantine
        self.allocated = 0          # allocations (re-initializations count too)
        self.freed = 0
        self._generations: dict[str, int] = {}      # label -> latest generation
        self._quarantine: collections.deque[Tracked] = collections.deque()
        self._serial = 0
        self._lock = threading.Lock()

    # -- allocation -------------------------------------------------------------------

    def alloc(self, cls: type[T], label: str | None = None, /, **fields: Any) -> T:
        """A new live ``cls`` object; fields not given are ``None`` (kzalloc).

        ``label`` names it in reports (``"pgdat[2]"``); its generation is one more than
        the last object allocated under the same label.
        """
        if not (isinstance(cls, _TrackedMeta) and cls.__tracked_fields__
                and not issubclass(cls, _Ref)):
            raise UsageError(f"alloc() needs a Tracked subclass with fields (annotated or "
                             f"__fields__), "
                             f"got {cls!r}")
        values = _initial_values(cls, fields)
        thread, stack = sched.current_name(), _stack.capture()
        obj = object.__new__(cls)
        obj._vals = values
        with self._lock:
            self._serial += 1
            label = label if label is not None else f"{cls.__name__.lower()}#{self._serial}"
            # ``in`` and ``[]``, not dict.get: docs/design.md, section 6 (free-threaded 3.13)
            gen = (self._generations[label] if label in self._generations else 0) + 1
            self._generations[label] = gen
            self.allocated += 1
            obj._meta = _Meta(self, label, thread, stack)
            obj._life = gen << 2 | _LIVE   # last: the object is complete before it is live
        return obj

    def reinit(self, obj: T, **fields: Any) -> T:
        """Reset ``obj`` in place as a new generation, live again; returns ``obj``.

        The model's *reuse* scheme: older references (and readers racing with the
        reset) are reported from the first store on; see :meth:`reinitializing`.
        """
        with self.reinitializing(obj, **fields):
            pass
        return obj

    @contextlib.contextmanager
    def reinitializing(self, obj: T, **fields: Any) -> Iterator[T]:
        """Reset ``obj`` in place as a new generation; yields the initialization view.

        On entry the generation is bumped and the phase becomes "being initialized"
        (one store), so every older reference and every raw reader is reported from
        then on; fields are reset to ``None`` and then set from ``fields``. Inside the
        block, set further fields through the yielded view (the model may put schedule
        points there). On a normal exit the object goes live and the view becomes an
        ordinary reference; if the block raises, the object stays "being initialized".
        ``obj`` may be live or freed (then it leaves the quarantine).
        """
        target = unwrap(obj)
        meta = getattr(target, "_meta", None)
        if meta is None or meta.allocator is not self:
            raise UsageError(f"reinit of {_object_text(target)}: not from this allocator")
        values = _initial_values(type(target), fields)
        thread, stack = sched.current_name(), _stack.capture()
        with self._lock:
            if target._life & _PHASE == _INIT:
                raise UsageError(f"reinit of {_object_text(target)}: it is already being "
                                 "initialized; finish that reinitializing() block first")
            gen = self._generations[meta.label] + 1
            self._generations[meta.label] = gen
            # First: from this store on, every reader's check fails (see opening comment).
            target._life = gen << 2 | _INIT
            target._vals[:] = values
            if _accesses.recording:     # the caller's ``with`` line: through contextlib
                _accesses.note("write", target, "*", f"{type(target).__name__} (reinit)",
                               depth=3)
            if target in self._quarantine:
                self._quarantine.remove(target)
            self.allocated += 1
            meta.alloc_thread, meta.alloc_stack, meta.evicted = thread, stack, False
        view = object.__new__(type(target).__ref_class__)  # type: ignore[attr-defined]
        view._obj = target
        view._life = gen << 2 | _INIT
        yield view
        with self._lock:
            target._life = gen << 2 | _LIVE     # last: publishes the new generation
            view._life = target._life

    # -- free -----------------------------------------------------------------------------

    def free(self, obj: Tracked | None) -> None:
        """Free ``obj``: phase "freed", fields poisoned, free stack kept, quarantined.

        ``free(None)`` does nothing (kfree(NULL)). A double free, a free of anything
        this allocator did not allocate, or a free through a stale reference is
        reported and otherwise ignored (like KASAN, the run goes on).
        """
        if obj is None:
            return
        thread, stack = sched.current_name(), _stack.capture()
        target = unwrap(obj)
        with self._lock:
            problem = self._free_problem(obj)
            if problem is None:
                self._do_free(target, thread, stack)
        if problem is None and _accesses.recording:
            _accesses.note("free", target, "*", depth=2)
        if problem is not None:
            kind, why = problem
            name = (obj._meta.label if isinstance(obj, Tracked) and hasattr(obj, "_meta")
                    else f"an object of type {type(obj).__name__}")
            self.oracles.collector.report(Violation(
                kind=kind, subject=f"of {name}", thread=thread, stack=stack,
                what=f"free() of {name} by thread {thread}, "
                     f"{self.oracles.reader_context()}",
                details=why))

    def _free_problem(self, obj: Any) -> tuple[Kind, str] | None:
        """What is wrong with freeing ``obj``, or ``None``; called under ``_lock``."""
        if not isinstance(obj, Tracked):
            return Kind.INVALID_FREE, (f"An object of type {type(obj).__name__} was never "
                                       "allocated by a TrackedAllocator.")
        target = unwrap(obj)
        meta = getattr(target, "_meta", None)
        if meta is None or meta.allocator is not self:
            return Kind.INVALID_FREE, f"{_object_text(target)} is not from this allocator."
        phase = target._life & _PHASE
        if obj is not target and obj._life >> 2 != target._life >> 2:
            return Kind.STALE_GENERATION, (
                f"The reference was taken at generation {obj._life >> 2}; the object is "
                f"now {_object_text(target)}.\n\n" + _history(target))
        if phase == _FREED:
            return Kind.DOUBLE_FREE, f"{_object_text(target)}.\n\n" + _history(target)
        if phase == _INIT:
            return Kind.INVALID_FREE, f"{_object_text(target)}: free() inside its reinit()."
        return None

    def _do_free(self, target: Tracked, thread: str, stack: _stack.Stack) -> None:
        """Free a live object; called under ``_lock``."""
        gen = target._life >> 2
        # (B) the life word first, the poison second: pairs with (A) in the fields.
        target._life = gen << 2 | _FREED
        vals = target._vals
        for i in range(len(vals)):
            vals[i] = POISON
        meta = target._meta
        meta.free_thread, meta.free_stack, meta.free_generation = thread, stack, gen
        self.freed += 1
        self._quarantine.append(target)
        while len(self._quarantine) > self.quarantine_size:
            old = self._quarantine.popleft()._meta
            old.alloc_stack, old.free_stack, old.evicted = (), (), True

    # -- inspection -------------------------------------------------------------------------

    def quarantined(self) -> list[Tracked]:
        """The objects in quarantine, oldest first."""
        with self._lock:
            return list(self._quarantine)

    def __repr__(self) -> str:
        with self._lock:
            q = len(self._quarantine)
        return (f"<TrackedAllocator {self.allocated} allocated, {self.freed} freed, "
                f"quarantine {q}/{self.quarantine_size}>")

    # -- reports ---------------------------------------------------------------------------

    def _report_access(self, obj: Tracked, field: str, value: Any, access: str,
                       ref_life: int | None) -> Violation:
        """Build and report the violation of a bad field access; returns it."""
        thread = sched.current_name()
        with self._lock:
            life = obj._life
            history = _history(obj)
            label = obj._meta.label
            text = _object_text(obj)
        phase = life & _PHASE
        stale = ref_life is not None and ref_life >> 2 != life >> 2
        kind = Kind.STALE_GENERATION if stale else Kind.USE_AFTER_FREE
        lines = [f"The object is {text}."]
        if ref_life is not None:
            lines.append(f"The reference was taken at generation {ref_life >> 2}.")
        if value is POISON and access == "Read":
            lines.append("The value read was poison.")
        elif phase != _LIVE and access == "Read":
            lines.append(f"The value was loaded before the check found the object "
                         f"{_PHASE_NAMES[phase]}: the read overlapped the change.")
        violation = Violation(
            kind=kind, subject=f"in {label}.{field}", thread=thread, stack=_stack.capture(),
            what=f"{access} of {label}.{field} by thread {thread}, "
                 f"{self.oracles.reader_context()}",
            details="\n".join(lines) + "\n\n" + history)
        return self.oracles.collector.report(violation)


def _initial_values(cls: type[Tracked], fields: dict[str, Any]) -> list[Any]:
    """The value list of a new generation: ``None`` everywhere, then ``fields``."""
    names = cls.__tracked_fields__
    unknown = sorted(set(fields) - set(names))
    if unknown:
        raise UsageError(f"{cls.__name__} has no field(s) {', '.join(unknown)}; "
                         f"its fields are {', '.join(names)}")
    return [fields.get(name) for name in names]


def _history(obj: Tracked) -> str:
    """Allocation and free stacks of ``obj``; called under its allocator's lock."""
    meta = obj._meta
    if meta.evicted:
        return ("(allocation and free stacks dropped: the object left the quarantine; "
                "raise TrackedAllocator(quarantine=N) to keep them)")
    parts = [f"Allocated by thread {meta.alloc_thread} (generation {obj._life >> 2}):\n"
             + _stack.format_stack(meta.alloc_stack)]
    if meta.free_thread is not None:
        parts.append(f"Freed by thread {meta.free_thread} "
                     f"(generation {meta.free_generation}):\n"
                     + _stack.format_stack(meta.free_stack))
    return "\n\n".join(parts)
