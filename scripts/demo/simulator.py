"""A simulated year of Digital Zhaoqing 2024, played by agency systems through the public APIs.

The simulator reads the plans from the registry (every plan, or those it is given: work points,
lead agencies, targets), makes one API client per reporting agency (an agency leading work
points in several plans has one client and reports on all of them) with the office's token
(`POST /v1/clients`), gets each agency a token from `POST /oauth/token` and posts status reports
to progress (`POST /v1/events`) with `occurred_at` on the (simulated) clock, as an agency's own
system would. Who does what is scripted and seeded (`Script`), so every run tells the same
story:

- most lead agencies report every 7 to 10 working days with rising percentages;
- work point 35 reports `blocked` in the first week (the first alert), and recovers in March;
- the 5G base-station count of work point 41 falls behind its target of 8000;
- a few agencies fall silent in July and never acknowledge: reminders and escalations follow;
- 市卫健局 goes quiet in April and reports again in May (the silence recovers);
- work point 38 reports `done` in September and the office approves its closure;
- the office issues a supervision notice (督办单) on the blocked work point 35 in January, which
  市林业局 answers in time, and one on the silent work point 36 in August, which nobody answers:
  it falls overdue and is escalated to the coordinating office;
- progress publishes the weekly and monthly circulars (通报) on the simulated calendar; the
  simulator tells each new one and each notice that falls overdue as it looks every day;
- agencies that keep reporting acknowledge most of their alerts a working day later.

The story (the numbered work points above) is played on the story plan: the first plan whose
year is the script's first day's (the 2024 plan). On every plan the lead agencies report
routinely on the script's days that fall in the plan's year, so a 2025 plan beside it is
reported on through 2025 when the clock gets there (`make demo` runs the clock to the end of
the last plan's year).

The clock and the HTTP clients are parameters: `make demo` runs it on the stack's ScaledClock
over HTTP, the tests on a ManualClock against the in-process stack (`until` moves the clock).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from duban_shared.clock import Clock, ScaledClock
from duban_shared.workdays import WorkingCalendar

PLAN = "zhaoqing-digital-2024"  # the plan `make up` imports by default
SHANGHAI = ZoneInfo("Asia/Shanghai")
OFFICE_MAIL = "duban@zhaoqing.example.cn"
KNOWN_MAIL = {"市林业局": "linye@zhaoqing.example.cn"}  # the address `make up` gives it

Say = Callable[[str], None]
Until = Callable[[datetime], Awaitable[None]]


@dataclass(frozen=True)
class Script:
    """What the agencies do; everything else follows from the seed."""

    seed: int = 2024
    first_day: date = date(2024, 1, 3)
    last_day: date | None = None  # None: 27 December of the last plan's year
    blocked_point: str = "35"  # work points by code, as the registry names them
    blocked_on: date = date(2024, 1, 8)
    blocked_note: str = "林分优化用地审批未完成,无法开展造林施工"
    unblocked_on: date = date(2024, 3, 11)
    kpi_point: str = "41"
    kpi_metric: str = "5G网络基站总量"
    kpi_pace: float = 0.5  # share of the straight line the count reaches from April
    kpi_stuck_until: date = date(2024, 4, 1)  # no new sites before: flat, then half the pace
    closed_point: str = "38"
    done_on: date = date(2024, 9, 20)
    approved_on: date = date(2024, 9, 25)
    silent_agencies: tuple[str, ...] = ("市文广旅体局", "市资源局", "市法院")
    silent_from: date = date(2024, 7, 1)
    quiet_agency: str = "市卫健局"
    quiet_from: date = date(2024, 4, 1)
    quiet_until: date = date(2024, 5, 15)
    sms_agencies: tuple[str, ...] = ("市工信局", "市文广旅体局", "市资源局")
    ack_share: float = 0.7  # of the alerts of agencies that keep reporting
    report_every: tuple[int, int] = (7, 10)  # working days between an agency's reports
    # Supervision notices: (work point, issued on, replied on or None: left unanswered).
    notices: tuple[tuple[str, date, date | None], ...] = (
        ("35", date(2024, 1, 15), date(2024, 1, 17)),
        ("36", date(2024, 8, 1), None),
    )
    notice_reply_days: int = 5


@dataclass(frozen=True)
class Agency:
    """An agency of the plan, as the registry names it."""

    id: uuid.UUID
    name: str


@dataclass(frozen=True)
class WorkPoint:
    """What the simulator needs to know about a work point."""

    number: int  # the ordinal in the plan: the order the script walks the plan in
    code: str  # '35', '3.2': what ids and paths name it by
    title: str
    leads: tuple[Agency, ...]
    targets: tuple[tuple[str, float], ...]  # (metric, value)
    plan: str = PLAN
    year: int = 2024  # the plan's

    @property
    def id(self) -> str:
        """The work point's id in events."""
        return f"{self.plan}/{self.code}"


@dataclass
class Credentials:
    """An API client of the registry, with its last token (expiry on the wall clock)."""

    client_id: str
    secret: str
    agency: Agency | None = None
    token: str | None = None
    expires_at: datetime | None = None


@dataclass(order=True)
class Action:
    """Something the script does at a simulated moment."""

    at: datetime
    order: int
    kind: str = field(compare=False)  # report, ack, approve, notice, reply
    code: str = field(compare=False, default="")
    agency: Agency | None = field(compare=False, default=None)
    status: str = field(compare=False, default="on_track")
    percent: int | None = field(compare=False, default=None)
    kpis: dict[str, float] = field(compare=False, default_factory=dict)
    note: str | None = field(compare=False, default=None)
    plan: str = field(compare=False, default=PLAN)


@dataclass
class Tally:
    """What the simulator did and saw, for the summary."""

    reports: int = 0
    refused: int = 0
    acks: int = 0
    notices: dict[str, str] = field(default_factory=dict)  # work point code -> notice id
    alerts_seen: set[str] = field(default_factory=set)
    resolved_seen: set[str] = field(default_factory=set)
    circulars_seen: set[str] = field(default_factory=set)
    overdue_seen: set[str] = field(default_factory=set)


class Services:
    """The three APIs with token handling: a token per client, renewed on the wall clock."""

    def __init__(
        self,
        registry: httpx.AsyncClient,
        progress: httpx.AsyncClient,
        notifier: httpx.AsyncClient,
        wall: Clock,
    ) -> None:
        self.registry, self.progress, self.notifier = registry, progress, notifier
        self._wall = wall

    async def token(self, who: Credentials, *, renew: bool = False) -> str:
        """A valid access token of a client: the cached one, or a new one from the registry."""
        now = self._wall.now()
        if (
            not renew
            and who.token
            and who.expires_at
            and now < who.expires_at - timedelta(seconds=60)
        ):
            return who.token
        response = await self.registry.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": who.client_id,
                "client_secret": who.secret,
            },
        )
        response.raise_for_status()
        body = response.json()
        who.token = str(body["access_token"])
        who.expires_at = now + timedelta(seconds=float(body["expires_in"]))
        return who.token

    async def call(
        self, who: Credentials, http: httpx.AsyncClient, method: str, path: str, **kw: Any
    ) -> httpx.Response:
        """A request with the client's token; an expired token is renewed once."""
        for renew in (False, True):
            headers = {"Authorization": f"Bearer {await self.token(who, renew=renew)}"}
            response = await http.request(method, path, headers=headers, **kw)
            if response.status_code != 401 or renew:
                return response
        raise AssertionError("unreachable")


def _at(day: date, minutes_after_nine: int) -> datetime:
    return datetime.combine(day, time(9, 0), SHANGHAI) + timedelta(minutes=minutes_after_nine)


def _label(code: str) -> str:
    return f"第{code}项"


def _elapsed(day: date) -> float:
    """The share of its year that has passed on a day."""
    start, end = date(day.year, 1, 1), date(day.year, 12, 31)
    return (day - start).days / ((end - start).days + 1)


def _stable(*parts: object) -> float:
    """A number in [0, 1) fixed by its arguments (independent of the order of events)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Simulator:
    """Plays the script against the services; `run()` returns the summary lines."""

    def __init__(
        self,
        services: Services,
        office: Credentials,
        *,
        clock: Clock,
        until: Until,
        script: Script | None = None,
        calendar: WorkingCalendar | None = None,
        say: Say = print,
        mail_domain: str = "zhaoqing.example.cn",
        plans: list[str] | None = None,
    ) -> None:
        self.api = services
        self.plans = list(plans or [])  # empty: every plan of the registry
        self.story_plan = PLAN
        self.office = office
        self.clock = clock
        self.until = until
        self.script = script or Script()
        self.calendar = calendar or WorkingCalendar()
        self.say = say
        self.mail_domain = mail_domain
        self.work_points: list[WorkPoint] = []
        self.last_day = self.script.last_day or self.script.first_day
        self.agencies: dict[str, Agency] = {}
        self.clients: dict[uuid.UUID, Credentials] = {}
        self.coordinating_agency: uuid.UUID | None = None
        self.tally = Tally()
        self._told: set[str] = set()  # narrative lines told once

    # --- setting up -------------------------------------------------------------------------

    async def load_plan(self) -> None:
        """Read the plans' work points and lead agencies from the registry (every plan when
        none was given)."""
        if not self.plans:
            listed = await self._pages(self.api.registry, "/v1/plans")
            self.plans = [
                str(p["slug"]) for p in sorted(listed, key=lambda p: (p["year"], p["slug"]))
            ]
        years: dict[str, int] = {}
        for slug in self.plans:
            plan = await self.api.call(self.office, self.api.registry, "GET", f"/v1/plans/{slug}")
            plan.raise_for_status()
            years[slug] = int(plan.json()["year"])
            coordinating = plan.json().get("coordinating_agency_id")
            if coordinating and self.coordinating_agency is None:
                self.coordinating_agency = uuid.UUID(coordinating)
            for item in await self._pages(self.api.registry, f"/v1/plans/{slug}/work-points"):
                leads = tuple(
                    Agency(uuid.UUID(r["agency_id"]), r["agency_name"])
                    for r in item["responsibilities"]
                    if r["role"] == "lead"
                )
                for agency in leads:
                    self.agencies[agency.name] = agency
                targets = tuple((t["metric"], float(t["value"])) for t in item["targets"])
                self.work_points.append(
                    WorkPoint(
                        item["number"],
                        item["code"],
                        item["title"],
                        leads,
                        targets,
                        slug,
                        years[slug],
                    )
                )
        self.work_points.sort(key=lambda wp: (wp.plan, wp.number))
        story_year = self.script.first_day.year
        self.story_plan = next((p for p in self.plans if years[p] == story_year), "")
        self.last_day = self.script.last_day or date(max(years.values()), 12, 27)
        self.say(
            f"计划已读取: {len(self.plans)} 个计划 ({', '.join(self.plans)}), "
            f"{len(self.work_points)} 项工作要点, {len(self.agencies)} 个牵头单位"
        )

    async def _pages(self, http: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
        """Every item of a paginated list, read as the office."""
        items: list[dict[str, Any]] = []
        while True:
            page = await self.api.call(
                self.office, http, "GET", path, params={"limit": 100, "offset": len(items)}
            )
            page.raise_for_status()
            items += page.json()["items"]
            if len(items) >= page.json()["total"] or not page.json()["items"]:
                return items

    async def make_clients(self) -> None:
        """One API client per reporting agency, made by the office (`POST /v1/clients`)."""
        for agency in self.agencies.values():
            response = await self.api.call(
                self.office,
                self.api.registry,
                "POST",
                "/v1/clients",
                json={
                    "role": "agency",
                    "agency_id": str(agency.id),
                    "label": "demo agency system",
                },
            )
            response.raise_for_status()
            body = response.json()
            self.clients[agency.id] = Credentials(body["client_id"], body["client_secret"], agency)
        self.say(f"已为 {len(self.clients)} 个单位开通接口账号 (OAuth2 client credentials)")

    async def set_contacts(self) -> None:
        """Email for every lead agency and the office; SMS first for a few agencies."""
        phones = 0
        targets = list(self.agencies.values())
        if self.coordinating_agency is not None:
            targets.append(Agency(self.coordinating_agency, "coordinating office"))
        for agency in targets:
            if agency.id == self.coordinating_agency:
                address = OFFICE_MAIL
            else:
                address = KNOWN_MAIL.get(
                    agency.name, f"dept-{agency.id.hex[:8]}@{self.mail_domain}"
                )
            contacts = [{"channel": "email", "address": address, "label": "办公室"}]
            if agency.name in self.script.sms_agencies:
                phones += 1
                number = f"1380013{8000 + phones:04d}"
                contacts.insert(0, {"channel": "sms", "address": number, "label": "督办专员"})
            response = await self.api.call(
                self.office,
                self.api.notifier,
                "PUT",
                f"/v1/agencies/{agency.id}/contacts",
                json={"contacts": contacts},
            )
            response.raise_for_status()
        self.say(f"联系人已登记: {len(targets)} 个单位 (其中 {phones} 个先发短信)")

    # --- the script -------------------------------------------------------------------------

    def plan_actions(self) -> list[Action]:
        """Every report and decision of the year, in time order (deterministic)."""
        s = self.script
        rng = random.Random(s.seed)  # noqa: S311 (a story, not secrets)
        actions: list[Action] = []
        order = 0
        for wp in self.work_points:
            # A plan is reported on in its own year: the script's days that fall in it.
            first = max(s.first_day, date(wp.year, 1, 2))
            last = min(self.last_day, date(wp.year, 12, 31))
            for agency in wp.leads:
                day = self.calendar.add_working_days(first, rng.randint(0, 4))
                ahead = rng.uniform(0.0, 4.0)
                closing = self._story(wp, s.closed_point)
                while day <= last and not (closing and day >= s.done_on):
                    if not self._keeps_quiet(agency, day):
                        order += 1
                        actions.append(self._report(wp, agency, day, ahead, rng, order))
                    later = self.calendar.add_working_days(day, rng.randint(*s.report_every))
                    if agency.name == s.quiet_agency and day < s.quiet_until < later:
                        later = s.quiet_until  # back from the quiet weeks
                    day = later
                if closing:  # every lead reports done: the work point goes to review
                    order += 1
                    actions.append(self._report(wp, agency, s.done_on, ahead, rng, order))
        blocked = self._point(s.blocked_point)
        if blocked is not None and blocked.leads:
            order += 1
            actions.append(
                Action(
                    _at(s.blocked_on, 30),
                    order,
                    "report",
                    blocked.code,
                    blocked.leads[0],
                    "blocked",
                    self._pace_percent(s.blocked_on, 0),
                    note=s.blocked_note,
                    plan=blocked.plan,
                )
            )
        if self._point(s.closed_point) is not None:
            order += 1
            actions.append(
                Action(
                    _at(s.approved_on, 120), order, "approve", s.closed_point, plan=self.story_plan
                )
            )
        for code, issued_on, replied_on in s.notices:
            point = self._point(code)
            if point is None or not point.leads:
                continue
            order += 1
            actions.append(Action(_at(issued_on, 60), order, "notice", code, plan=self.story_plan))
            if replied_on is not None:
                order += 1
                actions.append(
                    Action(
                        _at(replied_on, 90),
                        order,
                        "reply",
                        code,
                        point.leads[0],
                        plan=self.story_plan,
                        note="已召开专题会议研究,用地审批预计两周内完成,完成后立即组织施工",
                    )
                )
        return sorted(actions)

    def _story(self, wp: WorkPoint, code: str) -> bool:
        """Whether a work point is the story's work point of that code."""
        return wp.plan == self.story_plan and wp.code == code

    def _point(self, code: str) -> WorkPoint | None:
        return next((wp for wp in self.work_points if self._story(wp, code)), None)

    def _keeps_quiet(self, agency: Agency, day: date) -> bool:
        s = self.script
        if agency.name in s.silent_agencies and day >= s.silent_from:
            return True
        return agency.name == s.quiet_agency and s.quiet_from <= day < s.quiet_until

    def _pace_percent(self, day: date, ahead: float) -> int:
        return max(1, min(99, math.ceil(100 * _elapsed(day) + ahead)))

    def _report(
        self, wp: WorkPoint, agency: Agency, day: date, ahead: float, rng: random.Random, order: int
    ) -> Action:
        s = self.script
        minutes = rng.randint(0, 7 * 60)
        percent = self._pace_percent(day, ahead)
        status, note = "on_track", None
        kpis: dict[str, float] = {}
        if self._story(wp, s.blocked_point) and s.blocked_on <= day < s.unblocked_on:
            status, note = "blocked", s.blocked_note
            percent = self._pace_percent(s.blocked_on, 0)
        elif self._story(wp, s.blocked_point) and day >= s.unblocked_on:
            note = "用地审批已完成,造林施工恢复"
        if self._story(wp, s.closed_point) and day >= s.done_on:
            status, percent, note = "done", 100, "各项任务已完成,申请办结销号"
        elapsed = _elapsed(day)
        for metric, value in wp.targets:
            if self._story(wp, s.kpi_point) and metric == s.kpi_metric:
                # Flat while the sites are negotiated, then half the pace: behind from
                # February, and (with the gap growing) behind for good, without flapping.
                share = 0.03 if day < s.kpi_stuck_until else elapsed * s.kpi_pace
            else:
                share = min(1.0, elapsed + 0.02)
            kpis[metric] = round(value * share)
        if self._story(wp, s.kpi_point):
            note = f"5G基站累计建成 {int(kpis.get(s.kpi_metric, 0))} 座,站址协调进度滞后"
        return Action(
            _at(day, minutes),
            order,
            "report",
            wp.code,
            agency,
            status,
            percent,
            kpis,
            note,
            wp.plan,
        )

    # --- playing it -------------------------------------------------------------------------

    async def setup(self) -> None:
        """Read the plan, make the agencies' clients, set the contacts."""
        await self.load_plan()
        await self.make_clients()
        await self.set_contacts()

    async def run(self, *, stop_after: date | None = None) -> list[str]:
        """Play the year (or up to `stop_after`), then return the summary."""
        actions = self.plan_actions()
        self.say(f"剧本: 全年 {len(actions)} 个动作, 从 {actions[0].at:%Y-%m-%d} 开始")
        last_look: date | None = None
        i = 0
        while i < len(actions):
            day = actions[i].at.astimezone(SHANGHAI).date()
            if stop_after is not None and day > stop_after:
                break
            if last_look != day:
                # The day's acknowledgements and news before its reports.
                await self.until(_at(day, -30))
                await self.look_at_alerts(day)
                await self.look_at_supervision()
                last_look = day
            await self.until(actions[i].at)
            # Everything of the day already due goes at once (when behind the running clock).
            now, due = self.clock.now(), [actions[i]]
            i += 1
            while (
                i < len(actions)
                and actions[i].at <= now
                and actions[i].at.astimezone(SHANGHAI).date() == day
            ):
                due.append(actions[i])
                i += 1
            await self.perform(due)
        year_end = date(self.last_day.year, 12, 31)
        if stop_after is None or stop_after >= year_end:
            await self.until(_at(year_end, 0))
            await self.look_at_alerts(year_end)
            await self.look_at_supervision()
        return await self.summary()

    async def perform(self, actions: list[Action]) -> None:
        """Do scripted actions through the public API: each agency's reports in one request."""
        by_agency: dict[uuid.UUID, list[Action]] = {}
        for action in actions:
            if action.kind == "approve":
                await self.approve(action.code)
            elif action.kind == "notice":
                await self.issue_notice(action.code)
            elif action.kind == "reply":
                await self.reply_to_notice(action)
            elif action.agency is not None:
                by_agency.setdefault(action.agency.id, []).append(action)
        for agency_id, reports in by_agency.items():
            who = self.clients[agency_id]
            if len(reports) == 1:
                response = await self.api.call(
                    who, self.api.progress, "POST", "/v1/events", json=self._event(reports[0])
                )
                answers = [(response.status_code, response.text)]
            else:
                response = await self.api.call(
                    who,
                    self.api.progress,
                    "POST",
                    "/v1/events/batch",
                    json={"events": [self._event(a) for a in reports]},
                )
                if response.status_code != 200:
                    answers = [(response.status_code, response.text)] * len(reports)
                else:
                    answers = [(int(r["http_status"]), str(r)) for r in response.json()["results"]]
            for action, (status, text) in zip(reports, answers, strict=True):
                if status == 202:
                    self.tally.reports += 1
                    self._tell(action)
                else:
                    self.tally.refused += 1
                    assert action.agency is not None
                    self.say(f"  ! {action.agency.name} {_label(action.code)}: {text[:200]}")

    def _event(self, action: Action) -> dict[str, Any]:
        body: dict[str, Any] = {
            "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo/{action.order}")),
            "work_point_id": f"{action.plan}/{action.code}",
            "status": action.status,
            "occurred_at": self.clock.now().isoformat(),
        }
        if action.percent is not None:
            body["percent"] = action.percent
        if action.kpis:
            body["kpis"] = action.kpis
        if action.note:
            body["note"] = action.note
        return body

    def _tell(self, action: Action) -> None:
        """A narrative line for a notable report."""
        assert action.agency is not None
        s, what = self.script, f"{action.agency.name} {_label(action.code)}"
        if action.plan != self.story_plan:
            return
        if action.status == "blocked" and action.at.date() == s.blocked_on:
            self.say(f"{self._today()} {what} 报告受阻: {action.note}")
        elif action.status == "done":
            self.say(f"{self._today()} {what} 报告已完成,申请办结销号")
        elif (
            action.code == s.blocked_point
            and action.status == "on_track"
            and action.at.date() > s.blocked_on
            and self._first_time(f"unblocked-{action.code}")
        ) or (
            action.code == s.kpi_point
            and action.at.month % 3 == 0
            and self._first_time(f"kpi-{action.at:%Y-%m}")
        ):
            self.say(f"{self._today()} {what}: {action.note}")

    async def approve(self, code: str) -> None:
        """The office approves a work point's closure (办结销号)."""
        response = await self.api.call(
            self.office,
            self.api.progress,
            "POST",
            f"/v1/work-points/{self.story_plan}/{code}/closure/approve",
            json={"note": "经审核,同意办结销号"},
        )
        if response.status_code == 200:
            self.say(f"{self._today()} 督办办公室审核通过{_label(code)}办结销号")
        else:
            self.say(f"  ! 审核{_label(code)}未通过: {response.text[:200]}")

    async def issue_notice(self, code: str) -> None:
        """The office issues a supervision notice (督办单) on a work point."""
        response = await self.api.call(
            self.office,
            self.api.progress,
            "POST",
            f"/v1/work-points/{self.story_plan}/{code}/notices",
            json={
                "reason": "工作进展滞后,未按要求报送进展",
                "required_action": "说明滞后原因,提出整改措施和完成时限",
                "reply_within_working_days": self.script.notice_reply_days,
            },
        )
        if response.status_code == 201:
            notice = response.json()
            self.tally.notices[code] = str(notice["id"])
            self.say(
                f"{self._today()} 督办办公室下发督办单 {notice['number']}({_label(code)}),"
                f"限 {notice['reply_due_on']} 前反馈"
            )
        else:
            self.say(f"  ! 下发{_label(code)}督办单未成功: {response.text[:200]}")

    async def reply_to_notice(self, action: Action) -> None:
        """The lead agency replies to the notice on a work point."""
        notice_id = self.tally.notices.get(action.code)
        if notice_id is None or action.agency is None:
            return
        response = await self.api.call(
            self.clients[action.agency.id],
            self.api.progress,
            "POST",
            f"/v1/notices/{notice_id}/reply",
            json={"text": action.note},
        )
        if response.status_code == 200:
            self.say(f"{self._today()} {action.agency.name} 反馈督办单 {response.json()['number']}")
        else:
            self.say(f"  ! {action.agency.name} 反馈督办单未成功: {response.text[:200]}")

    async def look_at_alerts(self, day: date) -> None:
        """Tell what fired or resolved since the last look; agencies acknowledge some alerts."""
        alerts = await self._alerts()
        for alert in sorted(alerts, key=lambda a: str(a["fired_at"])):
            aid = str(alert["id"])
            leads = "、".join(alert["lead_agencies"]) or "—"
            if aid not in self.tally.alerts_seen:
                self.tally.alerts_seen.add(aid)
                if alert.get("resolution") == "closed" and not alert["reasons"]:
                    self.say(f"{self._today()} 通知 {_label(alert['code'])}已办结销号 → {leads}")
                    continue
                reasons = ",".join(alert["reasons"])
                self.say(
                    f"{self._today()} 告警 {_label(alert['code'])}「{alert['title']}」"
                    f" {alert['level']} ({reasons}) → {leads}"
                )
            if alert["state"] == "resolved" and aid not in self.tally.resolved_seen:
                self.tally.resolved_seen.add(aid)
                if alert.get("resolution") == "recovered":
                    self.say(f"{self._today()} 恢复 {_label(alert['code'])} 已恢复正常")
            if alert["state"] == "firing":
                await self._maybe_ack(alert, day)

    async def look_at_supervision(self) -> None:
        """Tell the circulars (通报) published since the last look, and the notices that fell
        overdue (the notifier escalates those to the coordinating office)."""
        for slug in self.plans:
            made = await self.api.call(
                self.office,
                self.api.progress,
                "GET",
                f"/v1/plans/{slug}/circulars",
                params={"limit": 20},
            )
            if made.status_code != 200:
                continue
            for circular in reversed(made.json()["items"]):
                if circular["id"] in self.tally.circulars_seen:
                    continue
                self.tally.circulars_seen.add(circular["id"])
                kind = "周通报" if circular["kind"] == "weekly" else "月通报"
                how = "按期生成" if circular["trigger"] == "scheduled" else "临时生成"
                self.say(
                    f"{self._today()} 通报 {circular['number']} ({kind} {circular['period']},"
                    f" {how}) 已发送"
                )
        if not self.tally.notices:
            return
        notices = await self.api.call(
            self.office, self.api.progress, "GET", "/v1/notices", params={"status": "overdue"}
        )
        if notices.status_code != 200:
            return
        for notice in notices.json()["items"]:
            if notice["id"] not in self.tally.overdue_seen:
                self.tally.overdue_seen.add(notice["id"])
                self.say(
                    f"{self._today()} 督办单 {notice['number']}"
                    f"({_label(notice['work_point_code'])}) 逾期未反馈, 升级至督办办公室"
                )

    async def _maybe_ack(self, alert: dict[str, Any], day: date) -> None:
        fired = datetime.fromisoformat(str(alert["fired_at"])).astimezone(SHANGHAI).date()
        if self.calendar.working_days_between(fired, day) < 1 or not self.calendar.is_working_day(
            day
        ):
            return
        s = self.script
        for name in alert["lead_agencies"]:
            agency = self.agencies.get(name)
            if agency is None or agency.id not in self.clients:
                continue
            if name in s.silent_agencies or name == s.quiet_agency:
                continue  # those that stopped reporting do not read their mail either
            if _stable(s.seed, alert["id"]) >= s.ack_share:
                continue
            response = await self.api.call(
                self.clients[agency.id], self.api.notifier, "POST", f"/v1/alerts/{alert['id']}/ack"
            )
            if response.status_code == 200:
                self.tally.acks += 1
                self.say(f"{self._today()} {name} 确认知悉{_label(alert['code'])}的告警")
            return

    async def _alerts(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = await self.api.call(
                self.office,
                self.api.notifier,
                "GET",
                "/v1/alerts",
                params={"limit": 500, "offset": len(items)},
            )
            page.raise_for_status()
            items += page.json()["items"]
            if len(items) >= page.json()["total"] or not page.json()["items"]:
                return items

    async def summary(self) -> list[str]:
        """Counts read back from the services: alerts, deliveries, escalations, the plan."""
        alerts = await self._alerts()
        states = Counter(a["state"] for a in alerts)
        resolutions = Counter(a.get("resolution") for a in alerts if a["state"] == "resolved")
        log: list[dict[str, Any]] = []
        while True:
            page = await self.api.call(
                self.office,
                self.api.notifier,
                "GET",
                "/v1/notifications",
                params={"limit": 500, "offset": len(log)},
            )
            page.raise_for_status()
            log += page.json()
            if len(page.json()) < 500:
                break
        sent = [n for n in log if n["status"] == "sent"]
        by_channel = Counter(n["channel"] for n in sent)
        escalations = sum(1 for n in sent if n["event"] == "escalated")
        reminders = sum(1 for n in sent if n["event"] == "reminder")
        lines = [
            f"报送 {self.tally.reports} 次 (被拒 {self.tally.refused})",
            f"告警 {len(alerts)} 条: firing {states['firing']}, acknowledged "
            f"{states['acknowledged']}, resolved {states['resolved']} "
            f"(恢复 {resolutions['recovered']}, 销号 {resolutions['closed']})",
            f"消息 {len(sent)} 条已发送 ({', '.join(f'{k} {v}' for k, v in by_channel.items())}),"
            f" 提醒 {reminders}, 升级至督办办公室 {escalations}, 确认知悉 {self.tally.acks}",
        ]
        notices = await self.api.call(
            self.office, self.api.progress, "GET", "/v1/notices", params={"limit": 500}
        )
        if notices.status_code == 200:
            by_state = Counter(n["status"] for n in notices.json()["items"])
            about = sum(1 for n in sent if str(n["event"]).startswith("notice_"))
            overdue = sum(1 for n in sent if n["event"] == "notice_overdue")
            lines.append(
                f"督办单 {notices.json()['total']} 件: "
                + ", ".join(f"{k} {v}" for k, v in sorted(by_state.items()))
                + f"; 督办单消息 {about} 条 (逾期未反馈升级 {overdue} 条)"
            )
        for slug in self.plans:
            summary = await self.api.call(
                self.office, self.api.progress, "GET", f"/v1/plans/{slug}/summary"
            )
            totals = summary.json()["totals"] if summary.status_code == 200 else {}
            lines.append(
                f"{slug} 工作要点: {totals.get('by_level', {})}, 待审核 "
                f"{totals.get('in_review', 0)}, 已销号 {totals.get('closed', 0)}"
            )
            circulars = await self.api.call(
                self.office, self.api.progress, "GET", f"/v1/plans/{slug}/circulars"
            )
            if circulars.status_code == 200 and circulars.json()["total"]:
                made = await self._pages(self.api.progress, f"/v1/plans/{slug}/circulars")
                kinds = Counter(c["kind"] for c in made)
                scheduled = sum(1 for c in made if c["trigger"] == "scheduled")
                latest = made[0]
                lines.append(
                    f"{slug} 通报 {len(made)} 期 (周通报 {kinds['weekly']}, 月通报 "
                    f"{kinds['monthly']}; 按期 {scheduled}, 临时 {len(made) - scheduled}), "
                    f"最新 {latest['number']} ({latest['period']}): "
                    f"{str(self.api.progress.base_url).rstrip('/')}/board/circulars/{latest['id']}.docx"
                )
        return lines

    def _first_time(self, key: str) -> bool:
        if key in self._told:
            return False
        self._told.add(key)
        return True

    def _today(self) -> str:
        return f"[{self.clock.now().astimezone(SHANGHAI):%Y-%m-%d}]"


async def wait_for_clock(clock: Clock, moment: datetime) -> None:
    """Wait (real time) until a running clock shows `moment`."""
    rate = clock.rate if isinstance(clock, ScaledClock) else 1.0
    remaining = (moment - clock.now()).total_seconds()
    if remaining > 0:
        await asyncio.sleep(remaining / rate + 0.001)
