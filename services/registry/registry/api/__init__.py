"""The registry's HTTP API: OAuth2 token endpoints, API clients, plans, work points, agencies.

Reads need any valid token (the plan is a public document); changes need the coordinating
office (role coordinator or operator). Lists are paginated with limit and offset.
"""

from fastapi import APIRouter

from registry.api import agencies, clients, oauth, plans, work_points
from registry.api.errors import answer_refusals

router = APIRouter()
for part in (oauth, clients, plans, work_points, agencies):
    router.include_router(part.router)

__all__ = ["answer_refusals", "router"]
