"""Push for the control endpoint and ``calbridge emulate``: verbs over each built-in emulator's own
push API (its README's push section), and the Feishu console set up so ``calbridge run`` gets pushed.

The verbs are found by what an emulator offers, never by its name: Google's ``state.push``
(channels), Graph's ``subscriptions()``/``lifecycle_event``/``max_subscription_lifetime``, Feishu's
``push`` hub. An emulator with none of them (the example plugin's) serves no push verb. No answer
ever carries a channel token, a ``clientState`` or a Feishu console secret.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any

PUSH_VERBS = ("subscriptions", "lifetime", "lifecycle")
CHALLENGE_RETRY = 0.5  # seconds between url_verification attempts while `calbridge run` is not up yet


def _iso(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _google(emulator: Any) -> Any:
    """Google's channels (``emu.state.push``), or None."""
    push = getattr(getattr(emulator, "state", None), "push", None)
    return push if callable(getattr(push, "channels", None)) else None


def _graph(emulator: Any) -> bool:
    return callable(getattr(emulator, "lifecycle_event", None)) and hasattr(emulator, "max_subscription_lifetime")


def _feishu(emulator: Any) -> Any:
    """Feishu's push hub (``emu.push``, with its app consoles), or None."""
    push = getattr(emulator, "push", None)
    return push if callable(getattr(push, "configure", None)) and hasattr(push, "consoles") else None


def push_verbs_of(emulator: Any) -> list[str]:
    """The push verbs ``emulator`` serves: ``subscriptions`` wherever it pushes, ``lifetime`` where
    lifetimes are capped (Google, Graph), ``lifecycle`` on Graph."""
    if _graph(emulator):
        return list(PUSH_VERBS)
    if _google(emulator) is not None:
        return ["subscriptions", "lifetime"]
    if _feishu(emulator) is not None:
        return ["subscriptions"]
    return []


def _subscriptions(emulator: Any) -> list[dict[str, Any]]:
    channels = _google(emulator)
    if channels is not None:
        return [{"id": c.id, "calendar": c.calendar_id, "address": c.address, "resource_id": c.resource_id,
                 "expires": _iso(dt.datetime.fromtimestamp(c.expiration / 1000, dt.UTC)), "messages": c.number}
                for c in channels.channels()]  # fmt: skip
    if _graph(emulator):
        return [{"id": s.id, "calendar": s.calendar_id, "resource": s.resource, "address": s.notification_url,
                 "lifecycle_address": s.lifecycle_url, "expires": _iso(s.expires),
                 "reauthorization_required": s.reauthorization_required}
                for s in emulator.subscriptions()]  # fmt: skip
    hub = _feishu(emulator)
    consoles = hub.consoles
    return [{"app_id": app, "calendar": cal,
             "address": consoles[app].request_url if app in consoles else None}
            for app, cal in hub.subscriptions()]  # fmt: skip


def _lifetime(emulator: Any, seconds: float) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        raise ValueError("seconds: expected a number > 0")
    if _graph(emulator):
        emulator.max_subscription_lifetime = dt.timedelta(seconds=seconds)
    else:
        _google(emulator).max_lifetime = float(seconds)


def call_push(emulator: Any, verb: str, args: Mapping[str, Any]) -> Any:
    """Run one push verb (see :func:`push_verbs_of`) with JSON ``args``.

    Raises:
        TypeError, ValueError: bad arguments (an unknown Graph subscription or lifecycle event).
    """
    if verb == "subscriptions":
        if args:
            raise TypeError("subscriptions takes no arguments")
        return _subscriptions(emulator)
    if verb == "lifetime":
        (seconds,) = _only(args, "seconds")
        _lifetime(emulator, seconds)
        return None
    subscription, event = _only(args, "id", "event")
    try:
        emulator.lifecycle_event(subscription, event)
    except KeyError:
        raise ValueError(f"no live subscription {subscription!r}") from None
    return None


def _only(args: Mapping[str, Any], *names: str) -> list[Any]:
    unknown = set(args) - set(names)
    if unknown:
        raise TypeError(f"unexpected argument {sorted(unknown)[0]!r}")
    missing = [n for n in names if n not in args]
    if missing:
        raise TypeError(f"missing argument {missing[0]!r}")
    return [args[n] for n in names]


def push_account(
    emulator: Any, account: dict[str, Any], public_url: str
) -> tuple[dict[str, Any], Callable[[threading.Event], None] | None]:
    """``account`` (the emulator's ``account_config``) ready to be pushed to ``public_url``, and what
    must run on a thread of its own until its console accepts the request URL (``None``: nothing).

    Google and Graph need nothing: ``calbridge run`` subscribes with the address itself. Feishu sends
    to one request URL per app, set in its developer console, and saving it there needs the
    ``url_verification`` challenge answered: the account becomes a ``user`` account (the event
    subscription needs a user token) with generated ``push`` settings, and the returned callable
    saves ``{public_url}/push/feishu`` again every :data:`CHALLENGE_RETRY` seconds until
    ``calbridge run``'s receiver answers the challenge (it is not up when ``emulate`` starts).
    """
    hub = _feishu(emulator)
    auth = account.get("auth") or {}
    if hub is None or not callable(getattr(emulator, "issue_refresh_token", None)) or "app_id" not in auth:
        return account, None
    app_id = str(auth["app_id"])
    token, key = secrets.token_urlsafe(18), secrets.token_urlsafe(24)
    user_auth = {"kind": "user", "app_id": app_id, "app_secret": auth["app_secret"],
                 "refresh_token": emulator.issue_refresh_token(app_id)}  # fmt: skip
    pushed = {**account, "auth": user_auth, "push": {"verification_token": token, "encrypt_key": key}}
    url = f"{public_url.rstrip('/')}/push/feishu"
    hub.configure(app_id, verification_token=token, encrypt_key=key)  # the console's values, no URL yet

    def save_url(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                outcome = hub.configure(app_id, verification_token=token, encrypt_key=key, request_url=url).result(
                    timeout=10
                )
            except (TimeoutError, RuntimeError, concurrent.futures.CancelledError):  # stopping, or slow: again
                outcome = None
            if outcome is not None and outcome.ok:
                return
            stop.wait(CHALLENGE_RETRY)

    return pushed, save_url
