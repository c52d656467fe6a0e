"""Hypothesis strategies built from a provider's wire Structs (``_wire.py``): every field of its type,
with adversarial values for the time, zone, recurrence and status fields, and the checks the
converters' fuzz tests share (an event satisfies the model and the packaged schema, or its item is
quarantined)."""

from __future__ import annotations

import datetime as dt
import functools
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import hypothesis
import jsonschema
import msgspec
from hypothesis import strategies as st

from calbridge.export import event_schema, event_to_dict
from calbridge.model import Event

Overrides = Mapping[str, st.SearchStrategy[Any]]

ZONES = st.sampled_from([
    "UTC", "Europe/Zurich", "America/New_York", "Asia/Kolkata", "Asia/Calcutta", "Pacific Standard Time",
    "tzone://Microsoft/Custom", "Mars/Olympus_Mons", "../../etc/passwd", "", " ", "GMT+5", "+05:00",
    "Etc/GMT-14", "Pacific/Kiritimati", "America/St_Johns", "\x00", "Europe/Zurich\n", "a" * 300,
])  # fmt: skip
RULES = st.sampled_from([
    "RRULE:FREQ=WEEKLY;BYDAY=MO,WE", "RRULE:FREQ=DAILY;COUNT=5", "RRULE:FREQ=SECONDLY;COUNT=50000000",
    "RRULE:FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0,999", "RRULE:FREQ=YEARLY;BYMONTH=13", "RRULE:FREQ=DAILY;INTERVAL=0",
    "RRULE:FREQ=DAILY;COUNT=-1", "RRULE:FREQ=DAILY;UNTIL=99991231T235959Z", "RRULE:FREQ=DAILY;UNTIL=00010101",
    "RRULE:FREQ=DAILY;UNTIL=junk", "RRULE:FREQ=NEVER", "RRULE:", "RRULE:FREQ=WEEKLY;BYDAY=99MO",
    "RRULE:FREQ=DAILY;X-FOO=1", "EXDATE:20260101T000000Z", "EXDATE;TZID=Mars/Olympus_Mons:20260101T090000",
    "RDATE:junk", "FREQ=DAILY;COUNT=3", "FREQ=WEEKLY;WKST=XX;INTERVAL=2;BYDAY=TU", "BEGIN:VEVENT",
    "RRULE:FREQ=MONTHLY;BYMONTHDAY=0", "RRULE:FREQ=YEARLY;BYWEEKNO=54", "RRULE:FREQ=DAILY;COUNT=1;COUNT=2",
])  # fmt: skip
TEXT = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(["", "\x00", "<b>x</b>&amp;", "&#x110000;", "é" * 40, "confirmed", "cancelled"]),
)
_OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m))
)
DATETIMES = st.one_of(
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59), timezones=_OFFSETS),
    st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=_OFFSETS),
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),  # naive
    st.sampled_from([dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5))),
                     dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5)))]),
)  # fmt: skip
DATES = st.one_of(st.dates(), st.sampled_from([dt.date.min, dt.date.max, dt.date(2026, 2, 28)]))
INTEGERS = st.one_of(st.integers(min_value=-(2**63), max_value=2**64), st.integers(min_value=0, max_value=2**33))


def strategy_for(tp: Any, overrides: Overrides, name: str = "") -> st.SearchStrategy[Any]:
    """Values of wire type ``tp`` (a Struct, its fields' types); a field named in ``overrides`` takes
    that strategy instead, at any depth."""
    if name in overrides:
        return overrides[name]
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return st.one_of(*(strategy_for(a, overrides, name) for a in typing.get_args(tp)))
    if tp is type(None):
        return st.none()
    if tp is msgspec.UnsetType:
        return st.just(msgspec.UNSET)
    if tp is Any:
        return st.one_of(st.none(), TEXT, INTEGERS, st.dictionaries(TEXT, TEXT, max_size=2))
    if origin in (list, tuple):
        args = typing.get_args(tp)
        items = st.lists(strategy_for(args[0], overrides), max_size=3)
        return items if origin is list else items.map(tuple)
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return structs(tp, overrides)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: TEXT, int: INTEGERS, bool: st.booleans(), dt.datetime: DATETIMES, dt.date: DATES,
    }  # fmt: skip
    if tp in simple:
        return simple[tp]
    raise TypeError(f"no strategy for {tp!r} ({name})")


def structs(cls: type[msgspec.Struct], overrides: Overrides, required: tuple[str, ...] = ()) -> st.SearchStrategy[Any]:
    """Instances of Struct ``cls``, each field drawn from its type (or its override); the fields named
    in ``required`` always drawn, the others sometimes left at their default."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: strategy_for(hints[f.name], overrides, f.name) for f in msgspec.structs.fields(cls)}
    always = {name: fields.pop(name) for name in required}
    return st.fixed_dictionaries(always, optional=fields).map(lambda kw: cls(**kw))


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` values about four times in five, so conversion gets past the field; ``bad`` otherwise."""
    return st.integers(min_value=0, max_value=4).flatmap(lambda i: bad if i == 0 else good)


def fuzz_settings(slow: bool) -> Callable[[Any], Any]:
    """A modest number of examples by default (CI, the same ones every run); many more with ``--slow``."""
    return hypothesis.settings(
        max_examples=3000 if slow else 120, deadline=None, database=None, derandomize=not slow,
        suppress_health_check=list(hypothesis.HealthCheck),
    )  # fmt: skip


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(event_schema())


def check_event(event: Event) -> None:
    """The model's invariants hold (its constructor's checks, run again) and the event fits the schema."""
    assert attrs.evolve(event) == event
    _validator().validate(event_to_dict(event))
