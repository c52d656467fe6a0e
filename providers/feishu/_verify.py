"""Verifies what Feishu POSTs to ``{public_url}/push/feishu``: the ``url_verification`` challenge
and ``calendar.calendar.event.changed_v4`` deliveries, plain or encrypted (apis.md 1.F, F19, F20).

Feishu has one request URL per app, so a delivery is matched to the accounts configured at this
endpoint (their :class:`~._pushconfig.FeishuPushSettings`), never trusted first:

- plain (an app without an encrypt key): ``header.app_id`` selects the accounts of that app and
  ``header.token`` must equal their ``verification_token``;
- encrypted (``{"encrypt": …}``): for each configured ``encrypt_key``, ``X-Lark-Signature`` must be
  hex(SHA-256(timestamp + nonce + key + raw body)) and the body must decrypt with it
  (AES-256-CBC, key SHA-256(encrypt_key), the IV its first 16 bytes, PKCS7); then ``header.token``
  is checked too. An account with an encrypt key takes only encrypted, signed deliveries: Feishu
  encrypts everything once a key is set (F19), and the token travels in every body.

The challenge is answered ``{"challenge": …}`` only when it verifies (its ``token``; with a key, it
decrypted with it). Like the official SDK (``EventDispatcherHandler.do``), the challenge needs no
signature. A verified event is answered 200 with a ``CHANGE`` notice naming every matching account
and the event's ``calendar_id``, its ``header.event_id`` the dedup key (Feishu delivers at least
once, F21). Anything else is a 4xx with no notice. Secrets and bodies are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from calbridge.push import Notice, NoticeKind, PushAccount, PushAnswer, PushRequest, SubscriptionLookup

from ._pushconfig import FeishuPushSettings

logger = logging.getLogger(__name__)

ENDPOINT = "feishu"
EVENT_TYPE = "calendar.calendar.event.changed_v4"
# Header names as the official SDK reads them (lark_oapi/core/const.py), lower-cased by the receiver.
TIMESTAMP = "x-lark-request-timestamp"
NONCE = "x-lark-request-nonce"
SIGNATURE = "x-lark-signature"
BLOCK = 16  # AES block and IV size

Configured = tuple[str, FeishuPushSettings]


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """``X-Lark-Signature``: hex(SHA-256(timestamp + nonce + encrypt_key + raw body)) (F20)."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode("utf-8") + body).hexdigest()


def decrypt(encrypt_key: str, encrypted: str) -> bytes | None:
    """The plaintext of an ``encrypt`` field, or None when it is not base64(IV ‖ AES-256-CBC) under
    this key (bad length, bad padding)."""
    try:
        raw = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 2 * BLOCK or len(raw) % BLOCK:
        return None
    key = hashlib.sha256(encrypt_key.encode("utf-8")).digest()
    decryptor = Cipher(algorithms.AES(key), modes.CBC(raw[:BLOCK])).decryptor()
    padded = decryptor.update(raw[BLOCK:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        return None


def _object(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _same(given: object, secret: str) -> bool:
    """Constant-time equality of a received value with a configured secret."""
    return isinstance(given, str) and hmac.compare_digest(given.encode("utf-8"), secret.encode("utf-8"))


def _refuse(status: int, reason: str) -> PushAnswer:
    logger.info("feishu push refused (HTTP %d): %s", status, reason)
    return PushAnswer(status=status, body=json.dumps({"msg": reason}).encode(), content_type="application/json")


def _challenge(doc: dict[str, Any]) -> PushAnswer:
    challenge = doc.get("challenge")
    if not isinstance(challenge, str):
        return _refuse(400, "url_verification without a challenge")
    return PushAnswer(status=200, body=json.dumps({"challenge": challenge}).encode(), content_type="application/json")


def _event(doc: dict[str, Any], names: Sequence[str]) -> PushAnswer:
    """A verified schema-2.0 body: a notice for a calendar event change, nothing for other events."""
    header = doc["header"]
    ok = PushAnswer(status=200, body=b'{"msg":"success"}', content_type="application/json")
    if header.get("event_type") != EVENT_TYPE:
        return ok  # another event the app subscribed to: verified, nothing to sync
    event = doc.get("event")
    calendar_id = event.get("calendar_id") if isinstance(event, dict) else None
    if not isinstance(calendar_id, str) or not calendar_id:
        return _refuse(400, "calendar event without a calendar_id")
    event_id = header.get("event_id")
    notice = Notice(kind=NoticeKind.CHANGE, accounts=tuple(dict.fromkeys(names)), calendar_id=calendar_id,
                    dedup_key=event_id if isinstance(event_id, str) and event_id else None)  # fmt: skip
    return PushAnswer(status=ok.status, body=ok.body, content_type=ok.content_type, notices=(notice,))


def _of_app(header: dict[str, Any], settings: FeishuPushSettings) -> bool:
    """``header.app_id`` is the account's app (an account without one, ``kind: token``, goes by its token)."""
    return settings.app_id is None or header.get("app_id") == settings.app_id


def _plain(doc: dict[str, Any], accounts: Sequence[Configured]) -> PushAnswer:
    if doc.get("type") == "url_verification":
        if any(_same(doc.get("token"), s.verification_token) for _, s in accounts):
            return _challenge(doc)
        return _refuse(401, "url_verification with an unknown token")
    header = doc.get("header")
    if not isinstance(header, dict):
        return _refuse(400, "no schema 2.0 header")
    names = [n for n, s in accounts if _of_app(header, s) and _same(header.get("token"), s.verification_token)]
    if not names:
        return _refuse(401, "no account of this app with this verification token (or a plain body for an app "
                            "with an encrypt key)")  # fmt: skip
    return _event(doc, names)


def _open(request: PushRequest, encrypted: str, key: str) -> tuple[dict[str, Any], bool] | None:
    """The body decrypted with ``key`` and whether it was signed with it; None when a signature was
    sent and does not match, or the body does not decrypt to a JSON object."""
    stamp, nonce, sent = (request.headers.get(h) for h in (TIMESTAMP, NONCE, SIGNATURE))
    signed = stamp is not None and nonce is not None and sent is not None
    if signed and not _same(sent, signature(stamp or "", nonce or "", key, request.body)):
        return None
    plain = decrypt(key, encrypted)
    doc = None if plain is None else _object(plain)
    return None if doc is None else (doc, signed)


def _encrypted(request: PushRequest, encrypted: object, accounts: Sequence[Configured]) -> PushAnswer:
    if not isinstance(encrypted, str):
        return _refuse(400, "encrypt is not a string")
    opened: dict[str, tuple[dict[str, Any], bool] | None] = {}
    challenge: dict[str, Any] | None = None
    names: list[str] = []
    doc: dict[str, Any] | None = None
    for name, settings in accounts:
        key = settings.encrypt_key
        if not key:
            continue
        if key not in opened:
            opened[key] = _open(request, encrypted, key)
        found = opened[key]
        if found is None:
            continue
        body, signed = found
        if body.get("type") == "url_verification":
            if _same(body.get("token"), settings.verification_token):
                challenge = body
            continue
        header = body.get("header")
        if (
            signed
            and isinstance(header, dict)
            and _of_app(header, settings)
            and _same(header.get("token"), settings.verification_token)
        ):
            names.append(name)
            doc = body
    if challenge is not None:
        return _challenge(challenge)
    if doc is None:
        return _refuse(401, "no configured encrypt key signs and decrypts it with a matching token")
    return _event(doc, names)


def verify(request: PushRequest, accounts: Sequence[PushAccount]) -> PushAnswer:
    """The answer to one delivery at ``/push/feishu``, given the accounts configured there."""
    doc = _object(request.body)
    if doc is None:
        return _refuse(400, "not a JSON object")
    configured = [(a.name, a.settings) for a in accounts if isinstance(a.settings, FeishuPushSettings)]
    if "encrypt" in doc:
        return _encrypted(request, doc["encrypt"], configured)
    return _plain(doc, [(n, s) for n, s in configured if s.encrypt_key is None])


class FeishuVerifier:
    """The :class:`~calbridge.push.PushVerifier` of the ``feishu`` endpoint (no subscription lookup:
    Feishu names the calendar and the app, and the settings verify it)."""

    endpoints: tuple[str, ...] = (ENDPOINT,)

    async def handle(
        self, request: PushRequest, *, subscriptions: SubscriptionLookup, accounts: Sequence[PushAccount]
    ) -> PushAnswer:
        """Verify ``request`` (never raises for bad input: a 4xx with no notices)."""
        if request.endpoint != ENDPOINT:
            return _refuse(404, "not a feishu endpoint")
        return verify(request, accounts)
