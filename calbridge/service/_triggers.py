"""What the receiver hands the service after it answered a verified notification."""

from __future__ import annotations

import attrs

from ..push import NoticeKind


@attrs.frozen(kw_only=True)
class Trigger:
    """One verified notice, resolved to its calendar. ``service.trigger(t)`` acts on it: CHANGE and
    MISSED schedule a round, REMOVED recreates the subscription then a round, REAUTHORIZE
    reauthorizes it, SYNC does nothing."""

    account: str
    calendar_id: str
    kind: NoticeKind = NoticeKind.CHANGE
    subscription_id: str | None = None
