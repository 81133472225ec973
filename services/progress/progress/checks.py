"""Checks a status report must pass before it is applied: the same for the HTTP API (a 4xx
answer) and for events produced to Kafka directly (the dead-letter topic)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from progress.models import WorkPointView


class ReportProblem(Exception):
    """Why a report can never be applied, with a stable code and the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def check_report(
    view: WorkPointView | None,
    work_point_id: str,
    agency_id: uuid.UUID,
    kpis: Mapping[str, float],
) -> WorkPointView:
    """Return the work point a report is about, or raise why it cannot be applied."""
    if view is None or view.deleted:
        raise ReportProblem(
            404,
            "unknown_work_point",
            f"No work point '{work_point_id}' is tracked; ids look like '<plan>/<number>', "
            "e.g. 'zhaoqing-digital-2024/35'.",
        )
    if view.role_of(agency_id) is None:
        raise ReportProblem(
            403,
            "agency_not_responsible",
            f"Agency {agency_id} is neither lead nor co-responsible for work point {view.number} "
            f"({view.title}); report only on work points assigned to it.",
        )
    known = [t["metric"] for t in view.targets]
    unknown = sorted(set(kpis) - set(known))
    if unknown:
        allowed = ", ".join(f"'{m}'" for m in known) if known else "none (it has no targets)"
        raise ReportProblem(
            422,
            "unknown_metric",
            f"Work point {view.number} has no target {', '.join(repr(m) for m in unknown)}; "
            f"its KPI metrics are: {allowed}.",
        )
    return view
