"""Opaque, versioned, JSON-serializable sync cursors.

A provider puts whatever it needs to resume into ``state`` (a Google ``syncToken`` and
``pageToken``, a Graph ``@odata.nextLink``, a Feishu ``sync_token``/``page_token`` pair); the
engine only stores and hands it back. ``scheme`` and ``version`` let a provider refuse a cursor
written by another provider or an older format, which it does by raising ``CursorExpired``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from .errors import CursorExpired


@attrs.frozen(kw_only=True, eq=True, hash=False)
class Cursor:
    """A resume point. ``scheme`` names the provider's cursor scheme; ``state`` is opaque JSON."""

    scheme: str
    version: int
    state: Mapping[str, Any] = attrs.field(factory=dict)

    def dumps(self) -> str:
        return json.dumps(
            {"scheme": self.scheme, "version": self.version, "state": dict(self.state)},
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def loads(cls, text: str) -> Cursor:
        data = json.loads(text)
        return cls(scheme=str(data["scheme"]), version=int(data["version"]), state=dict(data["state"]))

    def require(self, scheme: str, version: int) -> Mapping[str, Any]:
        """Return ``state`` if this cursor is of ``scheme``/``version``, else raise CursorExpired."""
        if self.scheme != scheme or self.version != version:
            raise CursorExpired(
                f"cursor of scheme {self.scheme!r} v{self.version} is not {scheme!r} v{version}",
                code="cursorVersion",
            )
        return self.state

    def __repr__(self) -> str:
        # The state holds provider tokens that are not secrets but are long and useless in logs.
        return f"Cursor(scheme={self.scheme!r}, version={self.version}, keys={sorted(self.state)})"
