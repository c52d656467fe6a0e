"""``unescape`` gives exactly what ``html.unescape`` gives, on its fast path and off it."""

from __future__ import annotations

import html

import pytest

from calbridge.toolkit import unescape


@pytest.mark.parametrize(
    "text", ["plain", "a &amp; b", "&amp;amp;", "&lt;b&gt;", "AT&T", "x &amp y", "&#39;q&#39; &amp; &nbsp;", "&"]
)
def test_unescape_is_html_unescape(text: str) -> None:
    assert unescape(text) == html.unescape(text)
