"""calbridge as a service: every calendar kept fresh by scheduled and push-triggered rounds.

``async with Service(config, store) as service: await service.serve()`` runs until
:meth:`Service.stop`; ``calbridge run`` is this with signal handlers. The receiver app
(:attr:`Service.app`) can be served by the service on ``service.listen`` or mounted in your own
aiohttp server (``serve_http=False``). See ``docs/design.md``, "The service".
"""

from __future__ import annotations

from ._schedule import Outcome, Policy, Slot
from ._seams import Subscriptions
from ._serve import ListenError
from ._service import Service
from ._triggers import Trigger

__all__ = ["ListenError", "Outcome", "Policy", "Service", "Slot", "Subscriptions", "Trigger"]
