"""The account's TLS for the blocking auth libraries (msal, google-auth run in ``asyncio.to_thread``
over ``requests``). aiohttp requests get it from :class:`~calbridge.toolkit.HttpClient` (``ctx.ssl``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

__all__ = ["CaSession", "ca_requests_session"]


class CaSession(requests.Session):
    """A session that verifies with ``ca_file`` even when ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` are set
    (requests lets those override ``verify``), keeping ``HTTPS_PROXY`` / ``NO_PROXY`` from the environment;
    ``timeout`` (seconds) applies to each request that names none."""

    def __init__(self, ca_file: str | Path | None = None, *, timeout: float | None = None) -> None:
        super().__init__()
        self.ca_file = None if ca_file is None else str(ca_file)
        self.default_timeout = timeout

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self.ca_file is not None:
            settings["verify"] = self.ca_file  # after the environment's bundle, so the account's CA wins
        return settings

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        if self.default_timeout is not None and kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)


def ca_requests_session(ca_file: str | Path | None, *, timeout: float | None = None) -> CaSession:
    """The ``requests.Session`` for an auth library: see :class:`CaSession`."""
    return CaSession(ca_file, timeout=timeout)
