"""PageDecoder: one typed pass on a good page, item-by-item quarantine with the exact JSON text on a bad one."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec
import pytest

from calbridge.toolkit import PageDecoder

T = TypeVar("T")


class Item(msgspec.Struct, rename="camel"):
    id: str | None = None
    start_time: int | None = None


class Page(msgspec.Struct, rename="camel"):
    items: list[Item] = []
    next_page_token: str | None = None


class Envelope(msgspec.Struct, Generic[T]):
    code: Any = None
    data: T | None = None


class FItem(msgspec.Struct):
    event_id: str
    n: int = 0


class FData(msgspec.Struct):
    items: list[FItem] | None = None
    page_token: str | None = None


PAGES = PageDecoder(Page, Item)
ENVELOPES = PageDecoder(Envelope[FData], FItem, items="data.items", id_field="event_id", payload_limit=30)


def test_a_good_page_is_one_typed_pass_and_payloads_are_fetched_on_demand() -> None:
    body = b'{"items": [{"id": "a", "startTime": 1}, {"id": "b"}], "nextPageToken": "p2", "extra": [1]}'
    page = PAGES.decode(body)
    assert page.items == [Item(id="a", start_time=1), Item(id="b")]
    assert page.items is page.page.items  # no copy on the fast path
    assert page.page.next_page_token == "p2" and page.quarantined == [] and not page.items_missing
    assert page.payload(1) == '{"id": "b"}'
    q = page.quarantine(0, "cannot normalize", event_id="a")
    assert (q.event_id, q.error, q.payload) == ("a", "cannot normalize", '{"id": "a", "startTime": 1}')


def test_an_off_shape_item_is_quarantined_with_its_exact_text_and_the_rest_lands() -> None:
    bad = b'{"id":  "bad",\n "startTime": "soon"}'
    body = b'{"nextPageToken": "p2", "items": [{"id": "a"}, ' + bad + b', 7, {"id": 5, "startTime": "x"}, {"id": "c"}]}'
    page = PAGES.decode(body)
    assert [i.id for i in page.items] == ["a", "c"]
    assert page.page.next_page_token == "p2" and page.page.items == []
    assert [q.event_id for q in page.quarantined] == ["bad", None, None]
    assert page.quarantined[0].payload == bad.decode()  # byte for byte, whitespace included
    assert "startTime" in page.quarantined[0].error and page.quarantined[1].payload == "7"
    assert page.payload(1) == '{"id": "c"}'  # positions skip the quarantined items


def test_a_nested_item_list_in_an_envelope_with_a_capped_payload() -> None:
    long = b'{"event_id": "x", "n": "' + b"y" * 100 + b'"}'
    body = b'{"code": 0, "data": {"page_token": "t", "items": [{"event_id": "a", "n": 2}, ' + long + b"]}}"
    page = ENVELOPES.decode(body)
    assert page.page.code == 0 and page.page.data is not None and page.page.data.page_token == "t"
    assert page.items == [FItem(event_id="a", n=2)]
    (q,) = page.quarantined
    assert q.event_id == "x" and q.payload == long.decode()[:30]
    good = ENVELOPES.decode(b'{"code": 0, "data": {"items": [{"event_id": "a"}]}}')
    assert good.items == [FItem(event_id="a")] and good.payload(0) == '{"event_id": "a"}'


def test_a_page_without_its_list_and_a_page_that_is_itself_off_shape() -> None:
    assert ENVELOPES.decode(b'{"code": 0, "data": {}}').items_missing
    assert ENVELOPES.decode(b'{"code": 0}').items == []
    assert not PAGES.decode(b"{}").items_missing  # a default of [] is a list
    with pytest.raises(msgspec.ValidationError):
        PAGES.decode(b'{"items": {"id": "a"}}')
    with pytest.raises(msgspec.ValidationError):
        PAGES.decode(b'{"items": [{"id": 1, "startTime": "x"}], "nextPageToken": 5}')
    with pytest.raises(msgspec.DecodeError):
        PAGES.decode(b"<html>")


def test_ids_are_read_leniently_and_single_items_decode() -> None:
    assert PAGES.id_of(b'{"id": "e1", "startTime": []}') == "e1"
    assert PAGES.id_of(b'{"id": ""}') is None and PAGES.id_of(b"[1]") is None and PAGES.id_of(b"{") is None
    assert PAGES.decode_item(b'{"id": "e1"}') == Item(id="e1")


def test_a_bad_items_path_is_refused_when_the_decoder_is_built() -> None:
    with pytest.raises(TypeError):
        PageDecoder(Page, Item, items="next_page_token")
    with pytest.raises(TypeError):
        PageDecoder(Page, Item, items="missing")
    with pytest.raises(TypeError):
        PageDecoder(Page, FItem)


def test_map_items_normalizes_and_quarantines_in_page_order() -> None:
    from calbridge.errors import MalformedEvent

    body = (b'{"items": [{"id": "a", "startTime": 1}, {"id": "late", "startTime": "x"}, {"id": "neg", "startTime": -1},'
            b' {"id": "skip"}, {"startTime": 2}]}')  # fmt: skip

    def normalize(item: Item) -> str | None:
        if item.id == "skip":
            return None
        if (item.start_time or 0) < 0:
            raise MalformedEvent("negative start", event_id=item.id)
        if item.id is None:
            raise MalformedEvent("no id")
        return item.id

    page = PAGES.decode(body)
    out, quarantined = page.map_items(normalize)
    assert out == ["a"]
    assert [(q.event_id, q.error) for q in quarantined] == [
        ("late", page.quarantined[0].error), ("neg", "negative start"), (None, "no id")
    ]  # fmt: skip
    assert quarantined[1].payload == '{"id": "neg", "startTime": -1}' and quarantined[2].payload == '{"startTime": 2}'
    fast, none = PAGES.decode(b'{"items": [{"id": "b"}, {"id": "c", "startTime": -5}]}').map_items(normalize)
    assert fast == ["b"] and [(q.event_id, q.payload) for q in none] == [("c", '{"id": "c", "startTime": -5}')]
