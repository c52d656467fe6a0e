"""Page decoding with quarantine: a whole page in one typed msgspec pass, item by item only when an
item does not fit.

``PageDecoder(EventsPage, Event, items="items")`` takes the Struct of a page, the Struct of one item
and the path to the page's list of them (``"data.items"`` for a list nested in an envelope).
:meth:`PageDecoder.decode` decodes the body into the page Struct at C speed. When one item is
off-shape (msgspec raises ``ValidationError``), it decodes the body again with the items kept as raw
JSON (a twin of the page Struct, derived once), decodes the items one by one and quarantines exactly
the ones that do not fit, each with its id (read leniently) and its own JSON text, while the rest of
the page lands. An item that decoded but then fails normalization is quarantined by the provider
with :meth:`DecodedPage.quarantine`, whose payload lookup decodes the page again only then (rare).
JSON nested deeper than the parser's recursion limit, even inside a skipped field, is a
``msgspec.DecodeError`` like any other undecodable body, never a ``RecursionError``.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from typing import Any, Generic, TypeVar, Union

import msgspec

from ..errors import MalformedEvent
from ..provider import Quarantined

__all__ = ["PAYLOAD_LIMIT", "DecodedPage", "PageDecoder"]

PAYLOAD_LIMIT = 100_000  # characters of an item's JSON text kept with its quarantine

P = TypeVar("P")
I = TypeVar("I")  # noqa: E741
R = TypeVar("R")


F = TypeVar("F", bound=Callable[..., Any])


def _shallow(fn: F) -> F:
    """``fn`` with a ``RecursionError`` from a deeply nested body raised as ``msgspec.DecodeError``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RecursionError:
            raise msgspec.DecodeError("JSON nested too deeply") from None

    return typing.cast(F, wrapper)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` → (X, True); anything else → (tp, False)."""
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _struct_of(tp: Any) -> type[msgspec.Struct] | None:
    base = typing.get_origin(tp) or tp
    return tp if isinstance(base, type) and issubclass(base, msgspec.Struct) else None


def _twin(page: Any, path: tuple[str, ...]) -> tuple[Any, Any]:
    """(raw twin of ``page`` with the list at ``path`` as ``list[msgspec.Raw] | None``, the item type)."""
    head, rest = path[0], path[1:]
    fields = msgspec.structs.fields(page)
    spec: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    item: Any = None
    found = False
    for f in fields:
        tp: Any = f.type
        if f.name == head:
            found = True
            inner, _ = _unwrap_optional(tp)
            if rest:
                nested = _struct_of(inner)
                if nested is None:
                    raise TypeError(f"{page!r}.{head} is not a Struct")
                raw_nested, item = _twin(nested, rest)
                tp = raw_nested | None
            else:
                if typing.get_origin(inner) is not list:
                    raise TypeError(f"{page!r}.{head} is not a list")
                (item,) = typing.get_args(inner)
                tp = list[msgspec.Raw] | None
            default: Any = None
        elif f.default is not msgspec.NODEFAULT:
            default = f.default
        elif f.default_factory is not msgspec.NODEFAULT:
            default = msgspec.field(default_factory=f.default_factory)
        else:
            default = msgspec.NODEFAULT
        rename[f.name] = f.encode_name
        spec.append((f.name, tp) if default is msgspec.NODEFAULT else (f.name, tp, default))
    if not found:
        raise TypeError(f"{page!r} has no field {head!r}")
    name = getattr(typing.get_origin(page) or page, "__name__", "Page")
    return msgspec.defstruct(f"Raw{name}", spec, rename=rename, gc=False), item


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if obj is None:
            return None
        obj = getattr(obj, name)
    return obj


def _rebuild(page: Any, raw: Any, path: tuple[str, ...]) -> Any:
    """A ``page`` Struct with the fields of its raw twin ``raw`` and an empty list at ``path``."""
    fields = {f.name: f.type for f in msgspec.structs.fields(page)}
    values = {name: getattr(raw, name) for name in fields}
    head = path[0]
    if values[head] is not None:
        nested = _struct_of(_unwrap_optional(fields[head])[0]) if len(path) > 1 else None
        values[head] = [] if nested is None else _rebuild(nested, values[head], path[1:])
    return page(**values)


class DecodedPage(Generic[P, I]):
    """One decoded page.

    - ``page``: the page Struct (its page-level fields: tokens, links; read the items from ``items``:
      after a per-item decode the page's own list is empty).
    - ``items``: the items that fit, in order; ``items_missing``: the page had no list at all (absent or null).
    - ``quarantined``: the items that did not fit, with their id, error and JSON text.

    :meth:`map_items` normalizes the items and quarantines those that fail, in page order.
    """

    __slots__ = (
        "_body", "_decoder", "_failed_at", "_positions", "_raw", "items", "items_missing", "page", "quarantined",
    )  # fmt: skip

    def __init__(
        self,
        decoder: PageDecoder[P, I],
        body: bytes,
        page: P,
        items: list[I] | None,
        *,
        quarantined: list[Quarantined] | None = None,
        failed_at: list[int] | None = None,
        positions: list[int] | None = None,
        raw: list[msgspec.Raw] | None = None,
    ) -> None:
        self._decoder = decoder
        self._body = body
        self.page = page
        self.items: list[I] = items if items is not None else []
        self.items_missing = items is None
        self.quarantined: list[Quarantined] = quarantined if quarantined is not None else []
        self._failed_at = failed_at or []  # index in the page's list of each of ``quarantined``
        self._positions = positions  # index in the page's list of each of ``items`` (None: the same)
        self._raw = raw

    def _raw_item(self, k: int) -> msgspec.Raw:
        raw = self._raw
        if raw is None:
            raw = self._raw = self._decoder.raw_items(self._body)
        return raw[k if self._positions is None else self._positions[k]]

    def payload(self, k: int) -> str:
        """The exact JSON text of ``items[k]``, capped (decodes the page again the first time: rare)."""
        return self._decoder.text(self._raw_item(k))

    def quarantine(self, k: int, error: str, *, event_id: str | None = None) -> Quarantined:
        """A :class:`Quarantined` for ``items[k]`` (one that decoded but could not be normalized);
        ``event_id`` defaults to the id in its JSON."""
        raw = self._raw_item(k)
        return Quarantined(event_id=event_id or self._decoder.id_of(raw), error=error, payload=self._decoder.text(raw))

    def map_items(
        self, fn: Callable[[I], R | None], *, errors: tuple[type[Exception], ...] = (Exception,)
    ) -> tuple[list[R], list[Quarantined]]:
        """``fn`` of each item (a None result is skipped), and every quarantined item of the page in page
        order: those that did not decode and those for which ``fn`` raised one of ``errors`` (its
        ``event_id`` attribute, else the id in the item's JSON, names it).

        Any exception quarantines its item by default: one item a converter cannot handle (a year-1
        time whose UTC is out of range: ``OverflowError``) must not fail its whole calendar.

        mypy infers ``R`` poorly from a union result: annotate the target (``changes: list[Change]``).
        """
        out: list[R] = []
        if not self.quarantined:
            quarantined: list[Quarantined] = []
            pending: list[tuple[int, Quarantined]] = []
        else:
            quarantined, pending = [], list(zip(self._failed_at, self.quarantined, strict=True))
        positions = self._positions
        for k, item in enumerate(self.items):
            if pending:
                here = k if positions is None else positions[k]
                while pending and pending[0][0] < here:
                    quarantined.append(pending.pop(0)[1])
            try:
                result = fn(item)
            except errors as exc:
                error = str(exc) if isinstance(exc, MalformedEvent) else f"{type(exc).__name__}: {exc}"
                quarantined.append(self.quarantine(k, error, event_id=getattr(exc, "event_id", None)))
                continue
            if result is not None:
                out.append(result)
        quarantined.extend(q for _, q in pending)
        return out, quarantined


class PageDecoder(Generic[P, I]):
    """Decodes pages of Struct ``page`` whose ``item`` Structs sit at ``items`` (a dotted path of field
    names; the field's type must be ``list[item]``, optionally ``| None``).

    ``id_field`` is the item's id key in the JSON (``"id"``, Feishu ``"event_id"``), read leniently
    from an off-shape item for its quarantine; ``payload_limit`` caps the kept JSON text (characters).
    Build decoders once, at import: deriving the raw twin costs far more than a decode.
    """

    def __init__(
        self,
        page: type[P],
        item: type[I],
        *,
        items: str = "items",
        id_field: str = "id",
        payload_limit: int = PAYLOAD_LIMIT,
    ) -> None:
        self._path = tuple(items.split("."))
        raw_page, listed = _twin(page, self._path)
        if listed is not item:
            raise TypeError(f"{page!r}.{items} holds {listed!r}, not {item!r}")
        self.page_type = page
        self.item_type = item
        self._page = msgspec.json.Decoder(page)
        self._raw_page = msgspec.json.Decoder(raw_page)
        self._item = msgspec.json.Decoder(item)
        id_only = msgspec.defstruct("IdOnly", [("id", Any, None)], rename={"id": id_field})
        self._id = msgspec.json.Decoder(id_only)
        self._limit = payload_limit

    @_shallow
    def decode(self, body: bytes) -> DecodedPage[P, I]:
        """``body`` → its items that fit and the quarantine of those that do not.

        Raises:
            msgspec.DecodeError: not JSON (or nested too deeply). msgspec.ValidationError: the page itself is off-shape
            (not an object, the list not a list, a page-level field of the wrong type).
        """
        try:
            page = self._page.decode(body)
        except msgspec.ValidationError:
            pass  # one item (or the page itself) is off-shape: find it, keep the rest
        else:
            return DecodedPage(self, body, page, _get(page, self._path))
        raw_page = self._raw_page.decode(body)
        raw_items: list[msgspec.Raw] | None = _get(raw_page, self._path)
        page = _rebuild(self.page_type, raw_page, self._path)
        if raw_items is None:
            return DecodedPage(self, body, page, None)
        items: list[I] = []
        positions: list[int] = []
        quarantined: list[Quarantined] = []
        failed_at: list[int] = []
        decode_item = self._item.decode
        for index, raw in enumerate(raw_items):
            try:
                items.append(decode_item(raw))
            except msgspec.ValidationError as exc:
                quarantined.append(Quarantined(event_id=self.id_of(raw), error=str(exc), payload=self.text(raw)))
                failed_at.append(index)
                continue
            positions.append(index)
        return DecodedPage(self, body, page, items, quarantined=quarantined, failed_at=failed_at, positions=positions,
                           raw=raw_items)  # fmt: skip

    @_shallow
    def decode_item(self, body: bytes) -> I:
        """One item on its own (a ``GET /events/{id}`` body).

        Raises:
            msgspec.DecodeError, msgspec.ValidationError.
        """
        item: I = self._item.decode(body)
        return item

    @_shallow
    def raw_items(self, body: bytes) -> list[msgspec.Raw]:
        """Each item's JSON text, undecoded."""
        return _get(self._raw_page.decode(body), self._path) or []

    def id_of(self, raw: msgspec.Raw | bytes) -> str | None:
        """The item's id when it is a non-empty string, else None (never raises)."""
        try:
            value = getattr(self._id.decode(raw), "id", None)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            return None
        return value if isinstance(value, str) and value else None

    def text(self, raw: msgspec.Raw | bytes) -> str:
        """An item's own JSON text as a quarantine keeps it (capped at ``payload_limit`` characters)."""
        return bytes(raw).decode("utf-8", "replace")[: self._limit]
