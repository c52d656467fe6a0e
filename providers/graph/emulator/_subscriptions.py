"""The emulator's Graph subscriptions as data: a create request checked, a subscription kept, and the
JSON of a subscription, a change notification and a lifecycle notification (apis.md 2.F).

Pure functions of their arguments; the routes (``_push_routes``) and the Python API (``_push``) hold
the lock and do the I/O.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs

UTC = dt.UTC
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})
MAX_CLIENT_STATE = 128  # characters (apis.md 2.F, [M13])
DEFAULT_MAX_LIFETIME = dt.timedelta(minutes=10_080)  # the current Learn table for Outlook events (apis.md 2.F)


class RequestError(Exception):
    """A subscription request Graph refuses: ``status``, ``code`` and ``message`` of its error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


@attrs.frozen(kw_only=True)
class Target:
    """What a ``resource`` names: ``me`` or a user key, and a calendar id (None: the default calendar)."""

    user: str | None  # None: /me
    calendar: str | None


@attrs.define(kw_only=True)
class SubscriptionDef:
    """One live subscription as the emulator keeps it."""

    id: str
    resource: str
    user: str  # the mailbox's upn
    calendar_id: str
    change_types: frozenset[str]
    notification_url: str
    lifecycle_url: str | None
    expires: dt.datetime
    client_state: str | None = attrs.field(repr=False)
    owner: tuple[str, str]  # the principal that created it: ("app", client) | ("user", upn)
    application_id: str
    reauthorization_required: bool = False

    def expired(self, now: dt.datetime) -> bool:
        return self.expires <= now


@attrs.frozen(kw_only=True)
class CreateRequest:
    """A checked ``POST /subscriptions`` body."""

    target: Target
    resource: str
    change_types: frozenset[str]
    notification_url: str
    lifecycle_url: str | None
    expires: dt.datetime
    client_state: str | None = attrs.field(repr=False)


def parse_resource(resource: str) -> Target:
    """``/users/{id}/calendars/{cid}/events``, ``/me/calendars/{cid}/events``, ``/users/{id}/events``
    or ``/me/events`` (leading slash optional, as Graph accepts it).

    Raises:
        RequestError: any other resource.
    """
    segs = [unquote(s) for s in resource.strip().strip("/").split("/")]
    user: str | None
    if segs[:1] == ["me"]:
        user, rest = None, segs[1:]
    elif len(segs) > 1 and segs[0].lower() == "users" and segs[1]:
        user, rest = segs[1], segs[2:]
    else:
        raise RequestError(400, "InvalidRequest", "The resource is not a supported resource for subscriptions.")
    if [s.lower() for s in rest] == ["events"]:
        return Target(user=user, calendar=None)
    if len(rest) == 3 and rest[0].lower() == "calendars" and rest[1] and rest[2].lower() == "events":
        return Target(user=user, calendar=rest[1])
    raise RequestError(400, "InvalidRequest", "The resource is not a supported resource for subscriptions.")


def parse_instant(value: object, *, what: str) -> dt.datetime:
    """An ISO 8601 instant as Graph takes it (``Z``, an offset, or none: UTC; up to 7 fractional digits)."""
    if not isinstance(value, str):
        raise RequestError(400, "InvalidRequest", f"{what} is required.")
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    head, dot, tail = text.partition(".")
    if dot:
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[:digits][:6].ljust(6, '0')}{tail[digits:]}"
    try:
        instant = dt.datetime.fromisoformat(text)
    except ValueError:
        raise RequestError(400, "InvalidRequest", f"{what} is not a valid date and time.") from None
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def check_expiry(expires: dt.datetime, *, now: dt.datetime, max_lifetime: dt.timedelta) -> None:
    """Raises RequestError for an expiry in the past or beyond the maximum lifetime."""
    if expires <= now:
        raise RequestError(400, "InvalidRequest", "Subscription expiration must be in the future.")
    if expires > now + max_lifetime:
        minutes = max_lifetime.total_seconds() / 60
        raise RequestError(
            400, "InvalidRequest", f"Subscription expiration can only be {minutes:g} minutes in the future."
        )


def _url(value: object, *, what: str) -> str:
    """An https URL, or http to a loopback host (the emulator's documented difference)."""
    if not isinstance(value, str) or not value:
        raise RequestError(400, "InvalidRequest", f"{what} is required.")
    parts = urlsplit(value)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host:
        return value
    if parts.scheme == "http" and _loopback(host):
        return value
    raise RequestError(400, "InvalidRequest", f"{what} must be an https URL.")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_create(body: object, *, now: dt.datetime, max_lifetime: dt.timedelta) -> CreateRequest:
    """Check a ``POST /subscriptions`` body.

    Raises:
        RequestError: a missing or invalid field, or an expiry beyond ``max_lifetime``.
    """
    if not isinstance(body, Mapping):
        raise RequestError(400, "BadRequest", "The request body must be a JSON object.")
    raw_types = body.get("changeType")
    if not isinstance(raw_types, str) or not raw_types.strip():
        raise RequestError(400, "InvalidRequest", "changeType is required.")
    types = frozenset(t.strip() for t in raw_types.split(","))
    if not types <= CHANGE_TYPES:
        raise RequestError(400, "InvalidRequest", "changeType must be a combination of created, updated, deleted.")
    state = body.get("clientState")
    if state is not None and (not isinstance(state, str) or len(state) > MAX_CLIENT_STATE):
        raise RequestError(400, "InvalidRequest", f"clientState must be a string of at most {MAX_CLIENT_STATE} chars.")
    resource = body.get("resource")
    if not isinstance(resource, str):
        raise RequestError(400, "InvalidRequest", "resource is required.")
    expires = parse_instant(body.get("expirationDateTime"), what="expirationDateTime")
    check_expiry(expires, now=now, max_lifetime=max_lifetime)
    lifecycle = body.get("lifecycleNotificationUrl")
    return CreateRequest(
        target=parse_resource(resource),
        resource=resource,
        change_types=types,
        notification_url=_url(body.get("notificationUrl"), what="notificationUrl"),
        lifecycle_url=None if lifecycle is None else _url(lifecycle, what="lifecycleNotificationUrl"),
        expires=expires,
        client_state=state,
    )


def stamp(value: dt.datetime) -> str:
    """Graph's form: UTC with seven fractional digits (``2024-05-04T11:00:00.0000000Z``)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def subscription_json(sub: SubscriptionDef, *, with_state: bool) -> dict[str, Any]:
    """The subscription resource; ``clientState`` only in the create answer (``with_state``)."""
    return {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
        "id": sub.id,
        "resource": sub.resource,
        "applicationId": sub.application_id,
        "changeType": ",".join(t for t in ("created", "updated", "deleted") if t in sub.change_types),
        "clientState": sub.client_state if with_state else None,
        "notificationUrl": sub.notification_url,
        "lifecycleNotificationUrl": sub.lifecycle_url,
        "expirationDateTime": stamp(sub.expires),
        "creatorId": sub.owner[1],
        "includeResourceData": False,
        "latestSupportedTlsVersion": "v1_2",
        "notificationQueryOptions": None,
        "encryptionCertificate": None,
        "encryptionCertificateId": None,
        "notificationUrlAppId": None,
    }


def change_item(
    sub: SubscriptionDef, *, change: str, user_id: str, event_id: str, etag: str | None, tenant: str
) -> dict[str, Any]:
    """One item of a change notification's ``value`` (basic: no resource data beyond ids)."""
    resource = f"Users/{user_id}/Events/{event_id}"
    data: dict[str, Any] = {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": resource}
    if etag is not None:
        data["@odata.etag"] = etag
    data["id"] = event_id
    return {
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": stamp(sub.expires),
        "clientState": sub.client_state,
        "changeType": change,
        "resource": resource,
        "tenantId": tenant,
        "resourceData": data,
    }


def lifecycle_item(sub: SubscriptionDef, *, event: str, tenant: str) -> dict[str, Any]:
    """One item of a lifecycle notification's ``value``."""
    return {
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": stamp(sub.expires),
        "tenantId": tenant,
        "clientState": sub.client_state,
        "lifecycleEvent": event,
    }
