"""Progress's consumers park what they cannot apply and go on: an unreadable work point snapshot,
and a parked status report listed, shown and replayed with the dead-letters command (on the real
broker, the in-process stack)."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid

import pytest
from duban_shared import topics
from duban_shared.cli import add_dead_letters
from duban_shared.deadletters import read_dead_letters
from duban_shared.events import ReportStatus, StatusEvent
from progress.store.models import WorkPointView

from tests.harness import wait_for
from tests.stack import PLAN, Stack


async def test_an_unreadable_work_point_snapshot_is_parked_and_later_ones_apply(
    stack: Stack,
) -> None:
    producer = stack.progress.producer
    await producer.send_and_wait(
        stack.topic_prefix + topics.WORK_POINTS, b'{"work_point_id": 35', key=f"{PLAN}/35".encode()
    )
    office = await stack.auth(stack.office)
    changed = await stack.registry_http.put(
        f"/v1/plans/{PLAN}/work-points/35/policy",
        json={"report_every_working_days": 7},
        headers=office,
    )
    assert changed.status_code == 200, changed.text

    async def applied() -> bool:
        async with stack.progress.sessions() as session:
            view = await session.get(WorkPointView, f"{PLAN}/35")
            return view is not None and view.report_every_working_days == 7

    await wait_for(applied, what="the snapshot behind the unreadable one to be applied")
    letters = await read_dead_letters(
        stack.kafka_bootstrap, stack.topic_prefix + topics.PROGRESS_DLQ
    )
    assert [d.code for d in letters] == ["invalid_snapshot"]
    assert letters[0].header("duban.consumer.group").endswith("duban-progress.work-points")


async def test_dead_letters_are_listed_shown_and_replayed(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # A report parked while its cause stood (say, a year without a calendar), fixed since.
    event = StatusEvent(
        event_id=uuid.uuid4(),
        occurred_at=stack.clock.now(),
        work_point_id=f"{PLAN}/35",
        agency_id=stack.forestry_id,
        status=ReportStatus.AT_RISK,
        percent=61,
    )
    status_topic = stack.topic_prefix + topics.STATUS
    dlq = stack.topic_prefix + topics.PROGRESS_DLQ
    await stack.progress.producer.send_and_wait(
        dlq,
        event.to_bytes(),
        key=event.work_point_id.encode(),
        headers=[
            ("duban.error.code", b"calendar_year_missing"),
            ("duban.error.message", b"No official holiday arrangement for 2027"),
            ("duban.source.topic", status_topic.encode()),
            ("duban.source.partition", b"0"),
            ("duban.source.offset", b"17"),
            ("duban.consumer.group", b"duban-progress.status"),
            ("duban.attempts", b"3"),
        ],
    )
    parser = argparse.ArgumentParser(prog="duban-progress")
    add_dead_letters(
        parser.add_subparsers(dest="command"),
        "duban-progress",
        lambda: (stack.kafka_bootstrap, dlq),
    )

    def run(*argv: str) -> str:
        """The command as an operator runs it (its own event loop, so in a thread here)."""
        args = parser.parse_args(list(argv))
        assert args.func(args) == 0
        return capsys.readouterr().out

    listed = await asyncio.to_thread(run, "dead-letters", "list")
    (line,) = listed.splitlines()
    letter_id, _parked_at, code, source, message = line.split("\t")
    assert (code, source) == ("calendar_year_missing", f"{status_topic}:0:17")
    assert message == "No official holiday arrangement for 2027"
    shown = json.loads(await asyncio.to_thread(run, "dead-letters", "show", letter_id))
    assert shown[0]["value"] == event.to_bytes().decode()
    assert await asyncio.to_thread(run, "dead-letters", "list", "--code", "other") == ""

    replayed = await asyncio.to_thread(
        run, "dead-letters", "replay", "--code", "calendar_year_missing"
    )
    assert replayed.startswith(f"{letter_id}\treplayed to {status_topic}:")

    async def applied() -> bool:
        answer = await stack.get_progress(stack.office, 35)
        return answer.json()["percent"] == 61

    await wait_for(applied, what="the replayed report to be applied")
    with pytest.raises(SystemExit, match="no dead letter 9:9"):
        await asyncio.to_thread(run, "dead-letters", "show", "9:9")
