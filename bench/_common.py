"""What the benchmarks share: interleaved timing, the memory an object graph holds, and the people
and bodies realistic pages are made of.

Realistic means what a work calendar looks like, not a cache's best case: attendee lists of 0–15
drawn from a few hundred colleagues with varied answers (so neither whole lists nor single
attendees always repeat), series with exceptions and cancelled stubs, HTML bodies.
"""

from __future__ import annotations

import datetime as dt
import enum
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

PEOPLE = 400  # the colleagues a calendar's attendee lists are drawn from
RESPONSES = ("accepted", "declined", "tentative", "needsAction")


def rng(seed: int = 11) -> random.Random:
    """The benchmarks' seeded generator: every run builds the same pages."""
    return random.Random(seed)


def people(r: random.Random, *, most: int = 15) -> list[int]:
    """Indices of the attendees of one event: 0–``most``, skewed to small meetings, distinct."""
    n = min(most, int(r.expovariate(1 / 4)))
    return r.sample(range(PEOPLE), n)


def person_name(k: int) -> str:
    first = ("Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy")[k % 10]
    return f"{first} Example{k}"


def html_body(i: int) -> str:
    """An HTML description as calendar clients write it (paragraphs, a list, a link, an entity)."""
    return (
        f"<p>Agenda for meeting {i}:</p><ul><li>status &amp; risks</li><li>roadmap</li>"
        f"<li>open questions</li></ul><p>Notes: <a href=\"https://docs.example.com/d/{i}\">doc</a>"
        "<br>Dial-in details below.</p>"
    )


def paired(
    base: Callable[[], object], fn: Callable[[], object], rounds: int, setup: Callable[[], object] | None = None
) -> tuple[float, float, float]:
    """(median base time, median fn time, median of the per-pair ratios fn/base), interleaved so that
    load from other processes slows both sides of a pair alike; ``setup`` and gc run before each pair,
    untimed."""
    bases, fns, ratios = [], [], []
    for _ in range(rounds):
        if setup is not None:
            setup()
        gc.collect()
        t0 = time.perf_counter()
        base()
        t1 = time.perf_counter()
        fn()
        t2 = time.perf_counter()
        bases.append(t1 - t0)
        fns.append(t2 - t1)
        ratios.append((t2 - t1) / (t1 - t0))
    return statistics.median(bases), statistics.median(fns), statistics.median(ratios)


def deep_size(roots: Iterable[object]) -> int:
    """Bytes of every object reachable from ``roots``, each counted once (shared values once in all);
    types, modules, functions and singletons (None, bools, enum members, tzinfo objects) are not
    counted: they exist whether events are held or not."""
    seen: set[int] = set()
    total = 0
    stack: list[Any] = list(roots)
    skip = (type, type(sys), type(deep_size), enum.Enum, dt.tzinfo)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip) or obj is None or isinstance(obj, bool):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def alone(events: list[Any], sample: int = 200) -> float:
    """The mean deep size of one value counted by itself (nothing shared with the others): what a
    value costs when it is the only one held, the upper bound of :func:`deep_size`'s per-value share."""
    step = max(1, len(events) // sample)
    picked = events[::step]
    return sum(deep_size([e]) for e in picked) / len(picked)

