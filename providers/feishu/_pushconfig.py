"""The feishu account's ``push`` mapping → frozen settings (no network).

Feishu delivers every event of an app to the one request URL of its developer console, with the
app's *verification token* in ``header.token`` and, when the app has an *encrypt key*, encrypted and
signed (apis.md 1.F). So an account's ``push`` holds those two console values::

    push:
      verification_token: ${FEISHU_VERIFICATION_TOKEN}   # required
      encrypt_key: ${FEISHU_ENCRYPT_KEY}                 # optional

The account's ``app_id`` (from its ``auth``) tells the verifier which deliveries are its app's. An
account without ``push`` gets :data:`NOT_CONFIGURED` and is polled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from calbridge.errors import ConfigError

from ._config import TenantAuth, UserAuth

REQUIRED = ("verification_token",)
OPTIONAL = ("encrypt_key",)


@attrs.frozen(kw_only=True)
class FeishuPushSettings:
    """An account's push settings: its app's console values; ``app_id`` is None for a ``token`` account."""

    app_id: str | None
    verification_token: str = attrs.field(repr=False)
    encrypt_key: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class PushNotConfigured:
    """The account has no ``push`` mapping: it is polled."""

    reason: str = "no push settings (verification_token)"


NOT_CONFIGURED = PushNotConfigured()


def _app_id(auth: object) -> str | None:
    """The app of the account's ``auth``, structured or still raw (``kind: token`` has none)."""
    if isinstance(auth, TenantAuth | UserAuth):
        return auth.app_id
    if isinstance(auth, Mapping):
        value = auth.get("app_id")
        return str(value) if isinstance(value, str | int) and not isinstance(value, bool) and value != "" else None
    return None


def parse_push(
    raw: Mapping[str, Any] | None, *, account: Mapping[str, Any], where: str
) -> FeishuPushSettings | PushNotConfigured:
    """Structure an account's ``push`` mapping; ``None`` (absent) is :data:`NOT_CONFIGURED`.

    Raises:
        ConfigError: naming the key (``accounts[0].push.verification_token: required``, an unknown
            key, a value that is not a string); never quoting a value.
    """
    if raw is None:
        return NOT_CONFIGURED
    for key in raw:
        if key not in REQUIRED and key not in OPTIONAL:
            raise ConfigError(f"unknown key (feishu push accepts {', '.join(REQUIRED + OPTIONAL)})",
                              where=f"{where}.{key}")  # fmt: skip
    values: dict[str, str] = {}
    for key in REQUIRED + OPTIONAL:
        value = raw.get(key)
        if value is None or value == "":
            if key in REQUIRED:
                raise ConfigError("required", where=f"{where}.{key}")
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ConfigError(f"expected a string, got {type(value).__name__}", where=f"{where}.{key}")
        values[key] = str(value)
    return FeishuPushSettings(
        app_id=_app_id(account.get("auth")),
        verification_token=values["verification_token"],
        encrypt_key=values.get("encrypt_key"),
    )
