"""Text helpers converters share: HTML entities in event bodies (Google descriptions, Graph bodies)."""

from __future__ import annotations

import html

__all__ = ["unescape"]


def unescape(text: str) -> str:
    """``html.unescape``, with the usual case (no entity but ``&amp;``) as one ``str.replace``: exactly
    what unescape gives there, without its regex scan and a Python call per entity."""
    if "&" not in text:
        return text
    if text.count("&") == text.count("&amp;"):
        return text.replace("&amp;", "&")
    return html.unescape(text)
