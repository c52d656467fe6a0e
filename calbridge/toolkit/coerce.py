"""Coercions: a non-essential value calbridge cannot read (a junk visibility, show-as or response, an
over-long text) takes the schema's neutral value, and is counted by field — never a silent change.

The rule every converter follows (``docs/design.md``, "Bad values"): a value of an *essential* field
(id, times, zone when it places a time, recurrence, status) that cannot be read faithfully
quarantines the item (raise :class:`~calbridge.errors.MalformedEvent`); any other field is coerced
through a :class:`Coercions` recorder, one per page, whose :attr:`~Coercions.counts` the provider
hands on as ``Page.coerced`` / ``Expansion.coerced`` (the engine sums them per calendar).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

__all__ = ["TEXT_LIMIT", "Coercions"]

TEXT_LIMIT = 1 << 20
"""Bytes of UTF-8 a text field (title, description, location) keeps; the rest is cut off."""

T = TypeVar("T")


class Coercions:
    """Counts, by field name, the values one page's conversion replaced with a neutral one.

    A mutable recorder (not a value): converters call :meth:`pick`, :meth:`text` or :meth:`note`
    as they meet bad values; ``counts`` is what they recorded.
    """

    __slots__ = ("_quick", "counts", "text_limit")

    def __init__(self, text_limit: int = TEXT_LIMIT) -> None:
        self.counts: dict[str, int] = {}
        self.text_limit = text_limit
        self._quick = text_limit // 4  # a str this long or shorter is within the limit in any encoding

    def note(self, field: str, n: int = 1) -> None:
        """Count ``n`` coerced values of ``field``."""
        self.counts[field] = self.counts.get(field, 0) + n

    def pick(self, table: Mapping[str, T], value: str | None, neutral: T, field: str) -> T:
        """``table[value]``; an absent value (None or empty) is ``neutral`` as the provider means it,
        an unknown one is ``neutral`` and counted."""
        if not value:
            return neutral
        found = table.get(value)
        if found is None:
            self.note(field)
            return neutral
        return found

    def text(self, value: str | None, field: str) -> str | None:
        """``value`` cut to :attr:`text_limit` bytes of UTF-8 (at a character boundary), counted when cut."""
        if value is None or len(value) <= self._quick:
            return value
        raw = value.encode("utf-8", "surrogatepass")
        if len(raw) <= self.text_limit:
            return value
        self.note(field)
        return raw[: self.text_limit].decode("utf-8", "ignore")

    def merge(self, other: Mapping[str, int]) -> None:
        """Add another recorder's counts (a page's expansions, the masters fetched for it)."""
        for field, n in other.items():
            self.note(field, n)
