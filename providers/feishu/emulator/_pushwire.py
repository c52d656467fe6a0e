"""What the emulated Feishu POSTs to an app's request URL: the schema-2.0
``calendar.calendar.event.changed_v4`` body and the ``url_verification`` challenge, encrypted and
signed when the app has an encrypt key (apis.md 1.F; F6, F19, F20).

Written apart from the adapter's verifier on purpose: the tests check one against the other.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

EVENT_TYPE = "calendar.calendar.event.changed_v4"


def encrypt(encrypt_key: str, plaintext: bytes) -> str:
    """base64(IV ‖ AES-256-CBC(key = SHA-256(encrypt_key), PKCS7)) with a random 16-byte IV (F19)."""
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(hashlib.sha256(encrypt_key.encode()).digest()), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize()).decode()


def sign(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """``X-Lark-Signature``: hex(SHA-256(timestamp + nonce + encrypt_key + body)) (F20)."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def event_doc(
    *,
    event_id: str,
    app_id: str,
    token: str,
    tenant_key: str,
    calendar_id: str,
    user_open_id: str,
    calendar_event_id: str | None,
    change_type: str | None,
) -> dict[str, Any]:
    """The plaintext event; ``calendar_event_id`` and ``change_type`` are grey-release fields (F6),
    left out when None."""
    event: dict[str, Any] = {
        "calendar_id": calendar_id,
        "user_id_list": [{"union_id": "on_" + user_open_id, "user_id": "u_" + user_open_id, "open_id": user_open_id}],
    }
    if calendar_event_id is not None:
        event["calendar_event_id"] = calendar_event_id
    if change_type is not None:
        event["change_type"] = change_type
    header = {"event_id": event_id, "event_type": EVENT_TYPE, "create_time": str(int(time.time() * 1000)),
              "token": token, "app_id": app_id, "tenant_key": tenant_key}  # fmt: skip
    return {"schema": "2.0", "header": header, "event": event}


def challenge_doc(challenge: str, token: str) -> dict[str, Any]:
    """The request URL check sent when the URL is saved in the console (F19)."""
    return {"challenge": challenge, "token": token, "type": "url_verification"}


def body_of(doc: dict[str, Any], encrypt_key: str | None) -> bytes:
    """The POST body: the JSON itself, or ``{"encrypt": …}`` of it."""
    plain = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    if not encrypt_key:
        return plain
    return json.dumps({"encrypt": encrypt(encrypt_key, plain)}).encode()


def headers_for(body: bytes, encrypt_key: str | None, *, signed: bool) -> dict[str, str]:
    """Content type, plus a fresh timestamp, nonce and signature when signing with an encrypt key."""
    out = {"Content-Type": "application/json; charset=utf-8"}
    if encrypt_key and signed:
        stamp, nonce = str(int(time.time())), secrets.token_hex(8)
        out.update({"X-Lark-Request-Timestamp": stamp, "X-Lark-Request-Nonce": nonce,
                    "X-Lark-Signature": sign(stamp, nonce, encrypt_key, body)})  # fmt: skip
    return out
