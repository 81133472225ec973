"""Typed dependencies of the notifier's routes."""

from __future__ import annotations

from typing import Annotated

from duban_shared.auth import Principal, PrincipalDep, require_office
from fastapi import Depends, Request

from notifier.service import NotifierService


def service(request: Request) -> NotifierService:
    """The running notifier (the one place that reads the app's state)."""
    running: NotifierService = request.app.state.service
    return running


ServiceDep = Annotated[NotifierService, Depends(service)]


def office(principal: PrincipalDep) -> Principal:
    """Contacts and the notification log are the coordinating office's (coordinator or
    operator)."""
    require_office(principal)
    return principal


OfficeDep = Annotated[Principal, Depends(office)]
