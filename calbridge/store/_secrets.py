"""The secret slot's encryption, once above every concrete store: :class:`SecretCodec` seals what is
written and opens what is read, and :class:`SealedSecrets` is the :class:`~calbridge.provider.SecretStore`
a store hands out, on top of its raw rows (:class:`SecretRows`).

With ``CALBRIDGE_SECRET_KEY`` (a Fernet key) every value written is encrypted (Fernet: AES-128-CBC
with an HMAC, from ``cryptography``) and stored as ``fernet:<token>``; a value without that prefix
was written before there was a key and is read as it is, then encrypted when next written.
``CALBRIDGE_SECRET_KEY_OLD`` also decrypts, so a key can be rotated (MultiFernet). An encrypted
value that no key opens, or a malformed key, is a :class:`~calbridge.errors.SecretKeyError`; its
message names the variables, never a value.
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ..errors import SecretKeyError

__all__ = ["KEY_ENV", "OLD_KEY_ENV", "PREFIX", "SealedSecrets", "SecretCodec", "SecretRows"]

KEY_ENV = "CALBRIDGE_SECRET_KEY"
OLD_KEY_ENV = "CALBRIDGE_SECRET_KEY_OLD"
PREFIX = "fernet:"
_MAKE_KEY = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


def _fernet(name: str, key: str) -> Fernet:
    try:
        return Fernet(key.strip().encode("ascii"))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise SecretKeyError(
            f"{name} is not a Fernet key (32 url-safe base64 bytes; make one with {_MAKE_KEY})"
        ) from None


@attrs.frozen(kw_only=True)
class SecretCodec:
    """Seals and opens secret slot values; ``keys`` None: no key, values are written as they are."""

    keys: MultiFernet | None = attrs.field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SecretCodec:
        """The codec ``CALBRIDGE_SECRET_KEY`` (and ``CALBRIDGE_SECRET_KEY_OLD``) describe.

        Raises:
            SecretKeyError: a key is malformed, or only the old one is set.
        """
        env = os.environ if environ is None else environ
        key, old = env.get(KEY_ENV, "").strip(), env.get(OLD_KEY_ENV, "").strip()
        if not key:
            if old:
                raise SecretKeyError(f"{OLD_KEY_ENV} is set without {KEY_ENV} (the key new values are encrypted with)")
            return cls()
        fernets = [_fernet(KEY_ENV, key)]
        if old:
            fernets.append(_fernet(OLD_KEY_ENV, old))
        return cls(keys=MultiFernet(fernets))

    def seal(self, value: str) -> str:
        """What to store for ``value``: encrypted with the key when there is one (an empty value stays empty)."""
        if self.keys is None or not value:
            return value
        return PREFIX + self.keys.encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        """The value ``stored`` holds (a plain one, written before there was a key, as it is).

        Raises:
            SecretKeyError: it is encrypted and no key is set, or no key set opens it.
        """
        if not stored.startswith(PREFIX):
            return stored
        if self.keys is None:
            raise SecretKeyError(f"the store's secret slot is encrypted and {KEY_ENV} is not set")
        try:
            return self.keys.decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise SecretKeyError(
                f"{KEY_ENV} does not decrypt the store's secret slot (a wrong key? during a rotation set "
                f"{OLD_KEY_ENV} to the previous one)"
            ) from None

    def check(self, stored: Sequence[str]) -> None:
        """Raise :class:`SecretKeyError` unless every value in ``stored`` can be opened."""
        for value in stored:
            self.open(value)


class SecretRows(Protocol):
    """A concrete store's raw secret rows, below the codec."""

    async def read_secret(self, account: str, name: str) -> str | None: ...

    async def write_secret(self, account: str, name: str, value: str) -> None: ...


@attrs.frozen
class SealedSecrets:
    """The :class:`~calbridge.provider.SecretStore` over ``rows``: written sealed, read opened."""

    rows: SecretRows
    codec: SecretCodec = attrs.field(repr=False)

    async def get_secret(self, account: str, name: str) -> str | None:
        stored = await self.rows.read_secret(account, name)
        return None if stored is None else self.codec.open(stored)

    async def set_secret(self, account: str, name: str, value: str) -> None:
        await self.rows.write_secret(account, name, self.codec.seal(value))
