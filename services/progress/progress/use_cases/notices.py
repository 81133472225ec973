"""Supervision notices (督办单): the office issues one on a work point, its lead agency replies by
a deadline in working days, the sweeper marks a late one overdue once, the office closes or
withdraws it. Each change is one transaction that records the history row and queues a
NoticeTransition (topic duban.notices.v1) in the outbox; the notifier tells and escalates."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from duban_shared import attributes as attr
from duban_shared import topics
from duban_shared.api import ApiError
from duban_shared.audit import Actor, record_audit
from duban_shared.auth import Principal, require_office
from duban_shared.clock import Clock
from duban_shared.events import AgencyRef, NoticeTransition, NoticeTransitionKind
from duban_shared.metrics import ServiceMetrics
from duban_shared.outbox import OutboxRelay, outbox_row
from duban_shared.workdays import OFFICIAL, WorkingCalendar, local_day
from opentelemetry import trace
from opentelemetry.trace import Tracer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.domain import notices as rules
from progress.store.models import (
    AuditLog,
    NoticeHistory,
    NoticeSequence,
    OutboxMessage,
    SupervisionNotice,
)
from progress.use_cases.reading import tracked

NUMBERING_ATTEMPTS = 3
"""Tries to number a notice when two take the year's first number at once."""

SWEEPER = "sweeper"
"""The actor of the history rows the sweeper writes."""


@dataclass(frozen=True)
class NoticeWithHistory:
    """A notice and every state change it went through, oldest first."""

    notice: SupervisionNotice
    history: list[NoticeHistory]


def unknown_notice(notice_id: uuid.UUID) -> ApiError:
    """404 unknown_notice."""
    return ApiError(
        404, "unknown_notice", f"没有编号为 {notice_id} 的督办单;请在 GET /v1/notices 中查看。"
    )


def may_see(principal: Principal, notice: SupervisionNotice) -> bool:
    """The office sees every notice; an agency those it leads."""
    return principal.is_office() or principal.agency_id in notice.lead_agency_ids()


def record(
    session: AsyncSession,
    notice: SupervisionNotice,
    kind: NoticeTransitionKind,
    actor: str | Actor,
    now: datetime,
    note: str | None = None,
) -> NoticeTransition:
    """Set the notice's state, write its history row and queue its transition; a person's or
    client's action (an Actor, not the sweeper) goes into the audit trail too."""
    before = None if kind is NoticeTransitionKind.ISSUED else notice.status
    if isinstance(actor, Actor):
        record_audit(
            session,
            AuditLog,
            actor=actor,
            action=f"notice.{kind.value}",
            subject=notice.number,
            at=now,
            before={"status": before} if before else None,
            after={"status": kind.value, "work_point_id": notice.work_point_id, "note": note},
        )
        actor = actor.client_id
    notice.status, notice.updated_at = kind.value, now
    session.add(notice)
    session.add(
        NoticeHistory(notice_id=notice.id, status=kind.value, actor=actor, note=note, at=now)
    )
    event = NoticeTransition(
        event_id=uuid.uuid4(),
        occurred_at=now,
        notice_id=notice.id,
        number=notice.number,
        kind=kind,
        work_point_id=notice.work_point_id,
        work_point_code=notice.code,
        work_point_title=notice.title,
        plan_slug=notice.plan_slug,
        lead_agencies=[AgencyRef.model_validate(a) for a in notice.lead_agencies],
        coordinating_agency_id=notice.coordinating_agency_id,
        issued_at=notice.issued_at,
        reply_due=notice.reply_due_at,
        reason=notice.reason,
        required_action=notice.required_action,
        note=note,
    )
    session.add(
        outbox_row(OutboxMessage, topics.NOTICES, notice.work_point_id, event.to_bytes(), now)
    )
    span = trace.get_current_span()
    span.set_attribute(attr.NOTICE_ID, str(notice.id))
    span.set_attribute(attr.NOTICE_STATE, kind.value)
    return event


async def next_number(session: AsyncSession, year: int) -> int:
    """The next sequence number of `year`, its counter row locked until the commit (two offices
    issuing at once get 7 and 8; a race on a new year's first row fails one on the unique key)."""
    counter = await session.get(NoticeSequence, year, with_for_update=True)
    if counter is None:
        counter = NoticeSequence(year=year, last=0)
    counter.last += 1
    session.add(counter)
    return counter.last


async def mark_overdue(session: AsyncSession, now: datetime, limit: int) -> list[SupervisionNotice]:
    """Mark issued notices whose reply is late `overdue` (claimed FOR UPDATE SKIP LOCKED on
    PostgreSQL, so two sweepers never mark one twice); return them."""
    query = (
        select(SupervisionNotice)
        .where(col(SupervisionNotice.status) == rules.ISSUED)
        .where(col(SupervisionNotice.reply_due_at) <= now)
        .order_by(col(SupervisionNotice.reply_due_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    late = list((await session.exec(query)).all())
    for notice in late:
        if rules.is_overdue(notice.status, notice.reply_due_at, now):
            record(session, notice, NoticeTransitionKind.OVERDUE, SWEEPER, now)
    return late


@dataclass
class Notices:
    """The notice use cases, each in a transaction of its own."""

    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    relay: OutboxRelay
    tracer: Tracer
    metrics: ServiceMetrics | None = None
    calendar: WorkingCalendar = OFFICIAL

    def _count(self, state: str) -> None:
        if self.metrics is not None:
            self.metrics.notices.add(1, {attr.NOTICE_STATE: state})

    async def issue(
        self,
        principal: Principal,
        plan_slug: str,
        code: str,
        *,
        reason: str,
        required_action: str,
        reply_within_working_days: int,
    ) -> SupervisionNotice:
        """Issue a notice on a tracked work point (the office only)."""
        with self.tracer.start_as_current_span("issue notice"):
            require_office(principal)
            for attempt in range(NUMBERING_ATTEMPTS):
                try:
                    notice = await self._issue(
                        principal,
                        plan_slug,
                        code,
                        reason,
                        required_action,
                        reply_within_working_days,
                    )
                    break
                except IntegrityError:
                    # Another office numbered the year's first notice at the same moment: the
                    # counter row exists now, so the next attempt waits on its lock.
                    if attempt == NUMBERING_ATTEMPTS - 1:
                        raise
            self._count(rules.ISSUED)
            self.relay.wake()
            return notice

    async def _issue(
        self,
        principal: Principal,
        plan_slug: str,
        code: str,
        reason: str,
        required_action: str,
        reply_within_working_days: int,
    ) -> SupervisionNotice:
        """Number and record a notice in one transaction."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            view, _ = await tracked(session, principal, plan_slug, code)
            due_on = rules.reply_due_on(now, reply_within_working_days, self.calendar)
            year = local_day(now).year
            seq = await next_number(session, year)
            notice = SupervisionNotice(
                year=year,
                seq=seq,
                number=rules.notice_number(year, seq),
                work_point_id=view.id,
                plan_slug=view.plan_slug,
                code=view.code,
                title=view.title,
                lead_agencies=[
                    {"agency_id": r["agency_id"], "name": r["name"]}
                    for r in view.responsibilities
                    if r["role"] == "lead"
                ],
                coordinating_agency_id=view.coordinating_agency_id,
                reason=reason,
                required_action=required_action,
                reply_within_working_days=reply_within_working_days,
                status=rules.ISSUED,
                issued_at=now,
                issued_by=principal.client_id,
                reply_due_on=due_on,
                reply_due_at=rules.reply_due_at(due_on),
                updated_at=now,
            )
            record(session, notice, NoticeTransitionKind.ISSUED, Actor.of(principal), now)
        return notice

    async def reply(
        self, principal: Principal, notice_id: uuid.UUID, *, text: str, evidence_url: str | None
    ) -> SupervisionNotice:
        """The lead agency's reply (反馈); 403 for anyone else, NoticeRefused when not open."""
        with self.tracer.start_as_current_span("reply to notice"):
            now = self.clock.now()
            async with self.sessions() as session, session.begin():
                notice = await session.get(SupervisionNotice, notice_id, with_for_update=True)
                if notice is None:
                    raise unknown_notice(notice_id)
                if principal.agency_id is None or principal.agency_id not in (
                    notice.lead_agency_ids()
                ):
                    raise ApiError(
                        403,
                        "not_lead_agency",
                        f"只有督办单{notice.number}所涉工作点的牵头单位可以反馈。",
                    )
                rules.check_reply(notice.status, notice.number)
                notice.reply_text, notice.evidence_url = text, evidence_url
                notice.replied_at, notice.replied_by = now, principal.client_id
                record(
                    session, notice, NoticeTransitionKind.REPLIED, Actor.of(principal), now, text
                )
            self._count(rules.REPLIED)
            self.relay.wake()
            return notice

    async def close(
        self, principal: Principal, notice_id: uuid.UUID, *, note: str | None
    ) -> SupervisionNotice:
        """The office closes a notice (办结)."""
        return await self._finish(
            principal, notice_id, NoticeTransitionKind.CLOSED, note, rules.check_close
        )

    async def withdraw(
        self, principal: Principal, notice_id: uuid.UUID, *, note: str | None
    ) -> SupervisionNotice:
        """The office withdraws an open notice (撤回)."""
        return await self._finish(
            principal, notice_id, NoticeTransitionKind.WITHDRAWN, note, rules.check_withdraw
        )

    async def _finish(
        self,
        principal: Principal,
        notice_id: uuid.UUID,
        kind: NoticeTransitionKind,
        note: str | None,
        check: Callable[[str, str], None],
    ) -> SupervisionNotice:
        with self.tracer.start_as_current_span(f"{kind.value} notice"):
            require_office(principal)
            now = self.clock.now()
            async with self.sessions() as session, session.begin():
                notice = await self._locked(session, principal, notice_id)
                check(notice.status, notice.number)
                record(session, notice, kind, Actor.of(principal), now, note)
            self._count(kind.value)
            self.relay.wake()
            return notice

    async def _locked(
        self, session: AsyncSession, principal: Principal, notice_id: uuid.UUID
    ) -> SupervisionNotice:
        notice = await session.get(SupervisionNotice, notice_id, with_for_update=True)
        if notice is None or not may_see(principal, notice):
            # An agency is not told whether another agency's notice exists.
            raise unknown_notice(notice_id)
        return notice

    async def one(self, principal: Principal, notice_id: uuid.UUID) -> NoticeWithHistory:
        """A notice the caller may see, with its history."""
        async with self.sessions() as session:
            notice = await session.get(SupervisionNotice, notice_id)
            if notice is None or not may_see(principal, notice):
                raise unknown_notice(notice_id)
            rows = await session.exec(
                select(NoticeHistory)
                .where(col(NoticeHistory.notice_id) == notice_id)
                .order_by(col(NoticeHistory.at), col(NoticeHistory.id))
            )
            history = list(rows.all())
            # Same-moment rows (issued and overdue in one test tick) keep the lifecycle order.
            history.sort(key=lambda h: (h.at, rules.STATES.index(h.status)))
            return NoticeWithHistory(notice, history)

    async def page(
        self,
        principal: Principal,
        *,
        plan: str | None,
        status: str | None,
        agency: uuid.UUID | None,
        work_point_id: str | None = None,
        limit: int,
        offset: int,
    ) -> tuple[list[SupervisionNotice], int]:
        """Notices newest first under the filters (an agency sees those it leads), one page, and
        the total."""
        query = select(SupervisionNotice)
        if plan is not None:
            query = query.where(col(SupervisionNotice.plan_slug) == plan)
        if status is not None:
            query = query.where(col(SupervisionNotice.status) == status)
        if work_point_id is not None:
            query = query.where(col(SupervisionNotice.work_point_id) == work_point_id)
        query = query.order_by(col(SupervisionNotice.issued_at).desc(), col(SupervisionNotice.seq))
        async with self.sessions() as session:
            rows = list((await session.exec(query)).all())
        mine = principal.agency_id if not principal.is_office() else agency
        if mine is not None:
            rows = [n for n in rows if mine in n.lead_agency_ids()]
        return rows[offset : offset + limit], len(rows)
