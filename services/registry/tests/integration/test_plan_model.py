"""The registry's plan model on PostgreSQL and SQLite: versions with a diff and confirmation,
agency names (short forms, aliases, renames, merges), stall policies, targets and shares."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from duban_shared import topics
from duban_shared.db import create_engine, session_factory
from duban_shared.events import AgencySnapshot, WorkPointSnapshot
from pydantic import ValidationError
from registry.api.schemas import StallPolicy, StallPolicyOverride
from registry.domain.errors import AgencyError
from registry.domain.plan_import import ConfirmationRequired, Defaults, ImportReport, sha256_text
from registry.domain.plan_parser import parse_plan
from registry.domain.policies import effective_policy
from registry.domain.versions import WorkPointShape, diff_work_points
from registry.store import agencies as agency_store
from registry.store.models import (
    AgencyHistory,
    OutboxMessage,
    Plan,
    PlanVersion,
    Responsibility,
    Target,
    TargetShare,
    WorkPoint,
)
from registry.use_cases import agencies
from registry.use_cases.plans import import_plan
from registry.use_cases.publishing import publish_work_point
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

PLAN = "zhaoqing-digital-2024"
TEXT = (Path(__file__).resolve().parents[4] / "data" / "plans" / f"{PLAN}.txt").read_text()
NOW = datetime.fromisoformat("2024-08-07T09:00:00+08:00")
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(params=["postgresql", "sqlite"])
async def sessions(request: pytest.FixtureRequest) -> AsyncIterator[Sessions]:
    fixture = "make_database" if request.param == "postgresql" else "sqlite_url"
    make: Callable[[str], str] = request.getfixturevalue(fixture)
    engine = create_engine(make("registry"))
    yield session_factory(engine)
    await engine.dispose()


async def _import(
    sessions: Sessions, text: str = TEXT, *, confirm: bool = True, now: datetime = NOW
) -> ImportReport:
    async with sessions() as session, session.begin():
        return await import_plan(
            session,
            parse_plan(text),
            slug=PLAN,
            source_sha256=sha256_text(text),
            source_text=text,
            now=now,
            defaults=Defaults(),
            confirm=confirm,
        )


async def _snapshots(sessions: Sessions, wp_id: str) -> list[WorkPointSnapshot]:
    async with sessions() as session:
        rows = await session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.topic == topics.WORK_POINTS, OutboxMessage.key == wp_id)
            .order_by(col(OutboxMessage.id))
        )
        return [WorkPointSnapshot.model_validate_json(r.payload) for r in rows.all()]


def _shape(title: str = "t", leads: tuple[str, ...] = ("A",), **kw: object) -> WorkPointShape:
    base: dict[str, object] = {
        "number": 1,
        "section": 1,
        "title": title,
        "text": title + "。",
        "leads": leads,
        "cos": (),
        "lead_inferred": False,
        "with_other_units": False,
        "targets": (),
    }
    base.update(kw)
    return WorkPointShape(**base)  # type: ignore[arg-type]


# ------------------------------------------------------------------ diff (pure)


def test_diff_names_added_removed_reworded_moved_and_role_changes() -> None:
    current = {str(n): _shape(t, number=n) for n, t in enumerate("abcd", 1)}
    new = {
        "1": _shape("a", number=1),
        "2": _shape("b2", number=2),
        "3": _shape("c", section=2, number=3),
        "4": _shape("d", leads=("B",), number=4),
        "5": _shape("e", leads=("New",), number=5),
    }
    diff = diff_work_points(current, new, known_agencies={"A", "B"})
    assert diff.added == ["5"]
    assert diff.removed == []
    assert diff.reworded == ["2"]
    assert diff.moved == ["3"]
    assert diff.responsibilities_changed == ["4"]
    assert diff.agencies_added == ["New"]
    assert diff.changed() == ["2", "3", "4"]
    assert diff.details["2"]["title"] == {"before": "b", "after": "b2"}
    assert diff.details["4"]["responsibilities"]["after"] == {"lead": ["B"], "co": []}
    assert not diff.is_empty()


def test_diff_compares_by_code_lists_in_plan_order_and_moves_a_shifted_ordinal() -> None:
    """Per-section codes: a work point inserted at the head of section 1 shifts the ordinals
    of the others; they keep their codes (ids), and count as moved, never as new."""
    current = {"1.1": _shape("a", number=1), "1.2": _shape("b", number=2)}
    current["2.1"] = _shape("c", section=2, number=3)
    new = {
        "1.1": _shape("a", number=1),
        "1.2": _shape("b", number=2),
        "1.3": _shape("n", number=3),
        "2.1": _shape("c", section=2, number=4),
    }
    diff = diff_work_points(current, new, known_agencies={"A"})
    assert diff.added == ["1.3"]
    assert diff.moved == ["2.1"]
    assert diff.details["2.1"] == {"number": {"before": 3, "after": 4}}
    codes = [str(n) for n in range(1, 12)]
    shapes = {c: _shape(c, number=int(c)) for c in codes}
    grown = {**shapes, "12": _shape("12", number=12)}
    assert diff_work_points(shapes, grown, known_agencies={"A"}).added == ["12"]
    reworded = {c: _shape(c + "!", number=int(c)) for c in codes}
    ordered = diff_work_points(shapes, reworded, known_agencies={"A"}).changed()
    assert ordered == codes  # 2 before 10: plan order, not the text order of codes


def test_identical_work_points_make_an_empty_diff() -> None:
    shapes = {str(n): _shape(str(n), number=n) for n in range(1, 4)}
    diff = diff_work_points(shapes, dict(shapes), known_agencies={"A"})
    assert diff.is_empty() and diff.changed() == []


# ------------------------------------------------------------------ versions


async def test_a_changed_text_is_applied_only_when_confirmed(sessions: Sessions) -> None:
    first = await _import(sessions)
    assert (first.plan_created, first.version) == (True, 1)
    changed = TEXT.replace("(市林业局牵头)", "(市林业局牵头,市资源局按职责分工负责)")

    with pytest.raises(ConfirmationRequired) as refused:
        await _import(sessions, changed, confirm=False)
    assert refused.value.diff.responsibilities_changed == ["35"]
    assert refused.value.diff.details["35"]["responsibilities"]["after"] == {
        "lead": ["市林业局"],
        "co": ["市资源局"],
    }
    async with sessions() as session:  # nothing was written
        plan = (await session.exec(select(Plan))).one()
        assert plan.version == 1
        roles = (
            await session.exec(
                select(Responsibility).where(Responsibility.work_point_id == f"{PLAN}/35")
            )
        ).all()
        assert len(roles) == 1

    applied = await _import(sessions, changed, confirm=True, now=NOW + timedelta(days=30))
    assert applied.version == 2 and applied.work_points_updated == ["35"]
    async with sessions() as session:
        versions = (
            await session.exec(select(PlanVersion).order_by(col(PlanVersion.version)))
        ).all()
    assert [v.version for v in versions] == [1, 2]
    assert versions[1].diff["responsibilities_changed"] == ["35"]
    assert versions[1].source_text == changed
    [*_, latest] = await _snapshots(sessions, f"{PLAN}/35")
    assert [(r.name, r.role) for r in latest.responsibilities] == [
        ("市林业局", "lead"),
        ("市资源局", "co"),
    ]


async def test_the_same_text_again_records_no_version(sessions: Sessions) -> None:
    await _import(sessions)
    again = await _import(sessions, confirm=False)
    assert again.changed is False and again.version == 1
    async with sessions() as session:
        assert len((await session.exec(select(PlanVersion))).all()) == 1


async def test_a_whole_year_plan_is_due_on_31_december_and_coordinated_by_its_issuer(
    sessions: Sessions,
) -> None:
    await _import(sessions)
    async with sessions() as session:
        plan = (await session.exec(select(Plan))).one()
        office = await agency_store.resolve(session, "市政务服务和数据管理局")
    assert plan.due_on == date(2024, 12, 31)
    assert office is not None and plan.coordinating_agency_id == office.id
    assert plan.city == "肇庆市"
    [snap] = await _snapshots(sessions, f"{PLAN}/1")
    assert snap.due_on == "2024-12-31"
    assert snap.coordinating_agency_id == office.id


# ------------------------------------------------------------------ agencies


async def test_names_with_or_without_zhaoqing_or_shi_resolve_to_one_agency(
    sessions: Sessions,
) -> None:
    await _import(sessions)
    async with sessions() as session:
        found = {
            name: (await agency_store.resolve(session, name))
            for name in ("市林业局", "肇庆市林业局", "林业局", "肇庆市政务服务和数据管理局")
        }
        assert {n: a.name if a else None for n, a in found.items()} == {
            "市林业局": "市林业局",
            "肇庆市林业局": "市林业局",
            "林业局": "市林业局",
            "肇庆市政务服务和数据管理局": "市政务服务和数据管理局",
        }
        assert await agency_store.resolve(session, "市不存在局") is None


async def test_an_alias_resolves_and_cannot_name_two_agencies(sessions: Sessions) -> None:
    await _import(sessions)
    async with sessions() as session, session.begin():
        office = await agency_store.resolve(session, "市政务服务和数据管理局")
        forestry = await agency_store.resolve(session, "市林业局")
        assert office is not None and forestry is not None
        added, refused = await agencies.load_aliases(
            session, {"市政数局": office.name, "x办": "市没有这个办"}, NOW
        )
        assert (added, refused) == (1, ["x办: no agency '市没有这个办'"])
        resolved = await agency_store.resolve(session, "市政数局")
        assert resolved is not None and resolved.id == office.id
        with pytest.raises(AgencyError) as taken:
            await agencies.add_alias(session, forestry, "市政数局", NOW)
        assert taken.value.code == "alias_taken"


async def test_a_renamed_agency_keeps_its_id_and_answers_to_its_old_name(
    sessions: Sessions,
) -> None:
    await _import(sessions)
    async with sessions() as session, session.begin():
        forestry = await agency_store.resolve(session, "市林业局")
        assert forestry is not None
        await agencies.rename(session, forestry, "市林业和草原局", NOW)
        again = await agency_store.resolve(session, "市林业局")
        assert again is not None and (again.id, again.name) == (forestry.id, "市林业和草原局")
        history = (
            await session.exec(select(AgencyHistory).where(AgencyHistory.agency_id == forestry.id))
        ).all()
        assert [(h.action, h.old_name, h.new_name) for h in history] == [
            ("created", None, "市林业局"),
            ("renamed", "市林业局", "市林业和草原局"),
        ]
        published = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.key == str(forestry.id)))
        ).all()
        last = AgencySnapshot.model_validate_json(published[-1].payload)
        assert (last.name, last.aliases) == ("市林业和草原局", ["市林业局"])
    # Re-importing the unchanged plan text maps its old name to the renamed agency.
    assert (await _import(sessions, TEXT + "\n")).work_points_updated == []


async def test_merging_moves_roles_and_shares_and_keeps_the_stronger_role(
    sessions: Sessions,
) -> None:
    await _import(sessions)
    async with sessions() as session, session.begin():
        security = await agency_store.resolve(session, "市公安局")
        justice = await agency_store.resolve(session, "市司法局")
        assert security is not None and justice is not None
        touched = await agencies.merge(session, justice, security, NOW)
        # 市司法局 shares work points 32, 33 with 市公安局; 26 is its own.
        assert {f"{PLAN}/{n}" for n in (26, 32, 33)} <= set(touched)
        roles = (
            await session.exec(select(Responsibility).where(Responsibility.agency_id == justice.id))
        ).all()
        assert roles == []
        on_33 = (
            await session.exec(
                select(Responsibility).where(Responsibility.work_point_id == f"{PLAN}/33")
            )
        ).all()
        assert sorted(str(r.agency_id) for r in on_33).count(str(security.id)) == 1
        merged = await agency_store.resolve(session, "市司法局")
        assert merged is not None and merged.id == security.id
        with pytest.raises(AgencyError) as itself:
            await agencies.merge(session, security, security, NOW)
        assert itself.value.code == "merge_into_itself"


# ------------------------------------------------------------------ policies and targets


def test_a_stall_policy_out_of_range_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as bad:
        StallPolicy(
            report_every_working_days=0,
            grace_working_days=3,
            warn_before_due_working_days=10,
            pace_tolerance_pct=10,
            flatline_reports=3,
        )
    assert bad.value.errors()[0]["loc"] == ("report_every_working_days",)
    with pytest.raises(ValidationError):
        StallPolicyOverride.model_validate({"grace_working_days": -1})
    with pytest.raises(ValidationError):
        StallPolicyOverride.model_validate({"silence": 3})


async def test_a_work_point_override_beats_the_plan_default_in_its_snapshot(
    sessions: Sessions,
) -> None:
    await _import(sessions)
    async with sessions() as session, session.begin():
        plan = (await session.exec(select(Plan))).one()
        wp = await session.get(WorkPoint, f"{PLAN}/41")
        assert wp is not None
        wp.report_every_working_days, wp.due_on = 5, date(2024, 10, 31)
        session.add(wp)
        policy = effective_policy(plan, wp)
        assert policy["report_every_working_days"] == 5
        assert policy["grace_working_days"] == plan.grace_working_days == 3
        await publish_work_point(session, wp, NOW)
    [*_, snap] = await _snapshots(sessions, f"{PLAN}/41")
    assert (snap.report_every_working_days, snap.grace_working_days) == (5, 3)
    assert snap.due_on == "2024-10-31"
    assert [(t.value, t.unit, t.comparator) for t in snap.targets] == [(8000, "座", ">=")]


async def test_the_seven_targets_are_stored_and_shares_travel_in_the_snapshot(
    sessions: Sessions,
) -> None:
    await _import(sessions)
    async with sessions() as session, session.begin():
        targets = (await session.exec(select(Target).order_by(col(Target.id)))).all()
        assert [(t.work_point_id.split("/")[1], t.value, t.unit) for t in targets] == [
            ("13", 230, "家"),
            ("23", 13, "项"),
            ("27", 500, "项"),
            ("27", 10, "%"),
            ("35", 13, "万亩"),
            ("35", 15, "万亩"),
            ("41", 8000, "座"),
        ]
        base_stations = targets[-1]
        assert base_stations.id is not None
        it = await agency_store.resolve(session, "市工信局")
        office = await agency_store.resolve(session, "市政务服务和数据管理局")
        assert it is not None and office is not None
        session.add(TargetShare(target_id=base_stations.id, agency_id=it.id, share=0.75))
        session.add(TargetShare(target_id=base_stations.id, agency_id=office.id, share=0.25))
        wp = await session.get(WorkPoint, f"{PLAN}/41")
        assert wp is not None
        await publish_work_point(session, wp, NOW)
    [*_, snap] = await _snapshots(sessions, f"{PLAN}/41")
    assert sorted(s.share for s in snap.targets[0].shares) == [0.25, 0.75]
    # The snapshot names the plan and the section, so readers need not ask the registry.
    assert snap.plan_title == "数字肇庆建设2024年工作要点"
    assert snap.section_title == "夯实数字基础设施建设,打造数字化发展坚实底座"
