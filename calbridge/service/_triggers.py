"""What the receiver hands the scheduler: one verified notification, resolved to its calendar."""

from __future__ import annotations

import attrs

from ..push import NoticeKind


@attrs.frozen(kw_only=True)
class Trigger:
    """A calendar to act on (``kind``: a round, or a subscription to recreate or renew first);
    ``subscription_id`` when the notification named one (not Feishu's)."""

    account: str
    calendar_id: str
    kind: NoticeKind
    subscription_id: str | None = None
