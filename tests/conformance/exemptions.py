"""The one table of conformance exemptions: what a provider truly cannot express, and why.

Each entry names a scenario (``*``: every scenario), a provider, and the row field it cannot
match (a dotted path into a row, or ``cancelled_occurrences``). docs/conformance.md explains each
one; ``test_every_exemption_is_needed`` fails when an entry no longer makes a difference.
"""

from __future__ import annotations

import dataclasses

from calbridge.testing._scenario_check import CANCELLED_OCCURRENCES, Exemption

EXEMPTIONS: tuple[Exemption, ...] = (
    Exemption(
        name="graph-cancelled-occurrence-is-absent",
        scenario="*",
        provider="graph",
        field=CANCELLED_OCCURRENCES,
        reason=(
            "Graph keeps no record of a cancelled occurrence: calendarView/delta reports it @removed and "
            "no exception remains, so the mirror has nothing to show (the contract: 'on Graph it simply "
            "is not there')."
        ),
    ),
    Exemption(
        name="graph-has-no-tentative-status",
        scenario="tentative-status",
        provider="graph",
        field="status",
        reason=(
            "A Graph event has isCancelled and nothing else for status; 'tentative' exists only as a "
            "showAs (free/busy) value, which is another field."
        ),
    ),
    Exemption(
        name="feishu-tentative-is-an-unanswered-invitation",
        scenario="tentative-status",
        provider="feishu",
        field="status",
        reason=(
            "Feishu's status 'tentative' means the identity has not answered yet (its event resource "
            "page: 日程暂未回应), so the contract makes it 'confirmed' with the account's own attendee "
            "at needs_action: a Feishu event has no tentative status of its own."
        ),
    ),
    Exemption(
        name="feishu-organizer-has-no-email",
        scenario="*",
        provider="feishu",
        field="organizer.email",
        reason="Feishu's event_organizer carries a user_id and a display_name, never an email address.",
    ),
)


def exemptions_for(scenario: str, provider: str) -> list[Exemption]:
    return [x for x in EXEMPTIONS if x.applies(scenario, provider)]


# -- known defects ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class KnownDefect:
    """A bug the conformance run exposed outside this suite's files, reported to the lead.

    Matching problems turn the test into an xfail naming the defect (never a silent pass); once the
    bug is fixed the entry no longer matches and the test fails until the entry is removed.
    """

    name: str
    scenarios: tuple[str, ...]
    provider: str
    problem_contains: str
    where: str


KNOWN_DEFECTS: tuple[KnownDefect, ...] = ()


def known_defects_for(scenario: str, provider: str) -> list[KnownDefect]:
    return [k for k in KNOWN_DEFECTS if scenario in k.scenarios and k.provider == provider]
