"""Agency scorecards across every tracked plan: each plan's card and the totals.

The per-plan reads are in `plans.py`; these apply the same rules (`queries.scorecards`, the
domain's `responsibility_cards` and `worst_first`) to every plan at once, so an agency shared
by several plans appears once, with each plan's figures and its totals.
"""

from __future__ import annotations

import uuid
from typing import Any

from duban_shared.api import ApiError, ErrorBody
from duban_shared.auth import Principal, PrincipalDep
from fastapi import APIRouter

from progress.api.deps import SessionDep
from progress.api.schemas import AcrossPlansOut, across_plans_out
from progress.store import queries
from progress.use_cases.reading import own

router = APIRouter(tags=["progress"])

NOT_YOUR_AGENCY: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ErrorBody,
        "description": "`not_your_agency`: an agency client asked for another agency's "
        "scorecard (the office may read any).",
    }
}
NO_RESPONSIBILITIES: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorBody,
        "description": "`no_responsibilities`: the agency is responsible for no tracked work "
        "point of any plan.",
    }
}


@router.get("/v1/scorecards")
async def scorecards_across_plans(
    session: SessionDep, principal: PrincipalDep
) -> list[AcrossPlansOut]:
    """Every responsible agency's scorecards on every tracked plan, with totals, most red
    first (by the totals). The office sees every agency; an agency client sees only its own
    (a list of one, or none when it is responsible for no tracked work point)."""
    rows = await queries.scorecards_across_plans(session, own(principal))
    return [across_plans_out(row) for row in rows]


def require_own_scorecard(principal: Principal, agency_id: uuid.UUID) -> None:
    """Refuse (403 not_your_agency) an agency client asking for another agency's scorecard."""
    if not principal.is_office() and principal.agency_id != agency_id:
        raise ApiError(
            403,
            "not_your_agency",
            "An agency client sees only its own agency's scorecard; ask the coordinating office "
            "for others.",
        )


@router.get(
    "/v1/agencies/{agency_id}/scorecard", responses={**NOT_YOUR_AGENCY, **NO_RESPONSIBILITIES}
)
async def agency_across_plans(
    agency_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> AcrossPlansOut:
    """One agency's scorecards on every tracked plan and its totals (an agency: its own
    only)."""
    require_own_scorecard(principal, agency_id)
    rows = await queries.scorecards_across_plans(session, agency_id)
    if not rows:
        raise ApiError(
            404,
            "no_responsibilities",
            f"Agency {agency_id} is responsible for no tracked work point of any plan.",
        )
    return across_plans_out(rows[0])
