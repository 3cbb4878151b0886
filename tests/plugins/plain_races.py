"""Concurrent code as people write it: plain threading, queue and time, no rcu_pgdat.

Each ``make_*`` builds fresh shared state and returns ``(threads, check)``: the thread
bodies by name and a check that raises when the run went wrong. ``correct=False`` is
the bug, ``correct=True`` its twin. These are the blind spots of other Python
schedulers: a containment test racing a removal, a wait on a Condition, a busy-wait on
``time.sleep(0)``, and an ABA that needs three preemptions.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

Threads = dict[str, Callable[[], None]]
Scenario = tuple[Threads, Callable[[], None]]


class Pool:
    """Take an item if it is still there (check-then-act on ``in``)."""

    def __init__(self, items: list[str], correct: bool) -> None:
        self.items = list(items)
        self.taken: list[str] = []
        self.lock = threading.Lock() if correct else None

    def _take(self, item: str) -> None:
        if item in self.items:
            self.items.remove(item)
            self.taken.append(item)

    def take(self, item: str) -> None:
        if self.lock is None:
            self._take(item)
        else:
            with self.lock:
                self._take(item)


def make_containment(correct: bool) -> Scenario:
    pool = Pool(["a", "b"], correct)

    def taker() -> None:
        pool.take("a")

    def check() -> None:
        assert sorted(pool.taken) == ["a"], f"taken twice: {pool.taken}"
    return {"taker-1": taker, "taker-2": taker}, check


def make_condition(correct: bool) -> Scenario:
    """The consumer checks ``ready`` outside the lock (bug): the notify can land
    between its check and its wait, which then waits for good (a lost wake-up)."""
    cond = threading.Condition()
    state: dict[str, Any] = {"ready": False, "got": None}

    def producer() -> None:
        with cond:
            state["ready"] = True
            cond.notify_all()

    def consumer() -> None:
        if correct:
            with cond:
                cond.wait_for(lambda: state["ready"])
        else:
            if not state["ready"]:
                with cond:
                    cond.wait()
        state["got"] = True

    def check() -> None:
        assert state["got"], "the consumer never woke"
    return {"consumer": consumer, "producer": producer}, check


class Mailbox:
    """A writer publishes a flag and a payload; a reader busy-waits on ``sleep(0)``."""

    def __init__(self) -> None:
        self.ready = False
        self.payload: int | None = None


def make_busy_wait(correct: bool, sleep: bool = True) -> Scenario:
    """``sleep=False``: the reader spins on the flag with no sleep at all."""
    box = Mailbox()
    seen: list[int | None] = []

    def writer() -> None:
        if correct:
            box.payload = 42
            box.ready = True
        else:
            box.ready = True          # published before the payload
            time.sleep(0.001)         # some work
            box.payload = 42

    def reader() -> None:
        while not box.ready:
            if sleep:
                time.sleep(0)
        seen.append(box.payload)

    def check() -> None:
        assert seen == [42], f"the reader saw {seen}"
    return {"reader": reader, "writer": writer}, check


class Node:
    def __init__(self, value: str, next: Node | None = None) -> None:
        self.value = value
        self.next = next


class Stack:
    """A Treiber stack whose compare-and-set compares the top node only (bug: ABA) or
    the top node and a version counter (twin)."""

    def __init__(self, values: list[str], correct: bool) -> None:
        self.top: Node | None = None
        self.version = 0
        self.correct = correct
        self._cas_lock = threading.Lock()     # makes the compare-and-set atomic, only
        for value in reversed(values):
            self.top = Node(value, self.top)

    def _cas(self, old: Node | None, version: int, new: Node | None) -> bool:
        with self._cas_lock:
            if self.top is old and (not self.correct or self.version == version):
                self.top = new
                self.version += 1
                return True
            return False

    def pop(self) -> Node | None:
        while True:
            version = self.version
            old = self.top
            if old is None:
                return None
            new = old.next
            if self._cas(old, version, new):
                return old

    def push(self, node: Node) -> None:
        while True:
            version = self.version
            node.next = self.top
            if self._cas(node.next, version, node):
                return

    def values(self) -> list[str]:
        out, node = [], self.top
        while node is not None and len(out) < 10:
            out.append(node.value)
            node = node.next
        return out


def make_aba(correct: bool) -> Scenario:
    """t1 pops A while t2 pops A and t3 pops B, then t2 pushes A back: t1's CAS sees
    A on top again and installs B, which t3 holds. Three switches in one order: t1 to
    t2 after t1 read A.next, t2 to t3 between t2's pop and push, and back to t2
    before t1 runs again."""
    stack = Stack(["A", "B", "C"], correct)
    popped: dict[str, list[str]] = {"t1": [], "t3": []}

    def t1() -> None:
        node = stack.pop()
        if node is not None:
            popped["t1"].append(node.value)

    def t2() -> None:
        node = stack.pop()
        if node is not None:
            stack.push(node)

    def t3() -> None:
        node = stack.pop()
        if node is not None:
            popped["t3"].append(node.value)

    def check() -> None:
        held = popped["t1"] + popped["t3"]
        on_stack = stack.values()
        dup = sorted(v for v in set(held) if v in on_stack or held.count(v) > 1)
        assert not dup, f"popped and still on the stack: {dup} (stack {on_stack}, popped {held})"
    return {"t1": t1, "t2": t2, "t3": t3}, check


def make_flag_spin(correct: bool) -> Scenario:
    """A busy-wait on a flag with no sleep at all (schedulable when instrumented)."""
    return make_busy_wait(correct, sleep=False)


class Counter:
    def __init__(self) -> None:
        self.value = 0


def make_counter(correct: bool) -> Scenario:
    """``counter.value += 1`` from two threads, with or without a lock."""
    counter = Counter()
    lock = threading.Lock()

    def inc() -> None:
        if correct:
            with lock:
                counter.value += 1
        else:
            counter.value += 1

    def check() -> None:
        assert counter.value == 2, f"lost update: {counter.value}"
    return {"inc-1": inc, "inc-2": inc}, check
