"""The coercion recorder: junk values read as the neutral value and over-long text cut, each counted."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from calbridge.model import Visibility
from calbridge.toolkit import TEXT_LIMIT, Coercions

TABLE = {"public": Visibility.PUBLIC, "private": Visibility.PRIVATE}


def test_pick_counts_unknown_values_only() -> None:
    co = Coercions()
    assert co.pick(TABLE, "private", Visibility.DEFAULT, "visibility") is Visibility.PRIVATE
    assert co.pick(TABLE, None, Visibility.DEFAULT, "visibility") is Visibility.DEFAULT  # absent: as meant
    assert co.pick(TABLE, "", Visibility.DEFAULT, "visibility") is Visibility.DEFAULT
    assert co.counts == {}
    assert co.pick(TABLE, "galactic", Visibility.DEFAULT, "visibility") is Visibility.DEFAULT
    co.note("title", 2)
    co.merge({"visibility": 3})
    assert co.counts == {"visibility": 4, "title": 2}


@given(text=st.text(st.characters(codec="utf-8"), max_size=60), limit=st.integers(min_value=1, max_value=80))
def test_text_is_cut_at_a_character_boundary_within_the_limit_and_counted(text: str, limit: int) -> None:
    co = Coercions(text_limit=limit)
    out = co.text(text, "title")
    assert out is not None and text.startswith(out)
    size = len(text.encode())
    assert len(out.encode()) <= limit
    assert (out == text) == (size <= limit)
    assert co.counts == ({} if size <= limit else {"title": 1})
    if size > limit:
        assert len(out.encode()) > limit - 4  # no more than one character short of the limit


def test_the_default_limit_is_one_mebibyte() -> None:
    co = Coercions()
    assert TEXT_LIMIT == 1 << 20 and co.text(None, "title") is None
    assert co.text("x" * TEXT_LIMIT, "title") == "x" * TEXT_LIMIT and not co.counts
    assert co.text("x" * 10_000_000, "title") == "x" * TEXT_LIMIT and co.counts == {"title": 1}
