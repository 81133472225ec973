"""What an agency wrote reaches other agencies and the office only as an attributed, inert
quotation: over a corpus of injection attempts (`data/note_injections.json`: header injection,
CR/LF, markdown and HTML links, bidi and zero-width characters, fake signatures and
acknowledgement links, very long text), every channel a message is rendered for (email text,
SMS, WeCom markdown) equals the message without the note once the quotation is taken out, and
the quotation has no link, marker or invisible character; through a real SMTP server, the
delivered mail has no header or recipient of the note's."""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from duban_shared import topics
from duban_shared.clock import ManualClock
from duban_shared.events import AgencyRef, Level, StallReason, StallTransition, StallTransitionKind
from duban_shared.numerals import chinese_number
from notifier.adapters.render import AlertView, Rendered, render
from notifier.domain.contacts import ContactIn
from notifier.domain.quoting import CUT_MARK, MAX_LINES, QUOTE_MARK, WIDTH
from notifier.main import build
from notifier.service import NotifierService
from notifier.settings import NotifierSettings
from notifier.store.contacts import replace_contacts
from notifier.store.models import AgencyView

from tests.harness import SmtpSink, Spans

CORPUS: list[dict[str, str]] = json.loads(
    (Path(__file__).parents[1] / "data" / "note_injections.json").read_text(encoding="utf-8")
)
ROOT = Path(__file__).resolve().parents[4]
URL = "http://127.0.0.1:8003/a/Q1w2E3r4T5y6AbCdEfGh"  # the shape of the notifier's links
FIRED = datetime(2024, 10, 21, 2, 0, tzinfo=UTC)
OFFICE = "市政务服务和数据管理局"

_HEAD = re.compile(r"【[^【】]+ (?:报送说明|审核意见),原文引用】")
_SMS_QUOTE = re.compile(r",(?:报送说明|审核意见)\((?:[^()]*)原文\):「([^「」]*)」")
_SCHEME = re.compile(r"(?i)(?<![a-z0-9+.-])(?!hxxps?:)[a-z][a-z0-9+.-]*:(?://|\\\\)")
_HOST = re.compile(r"[A-Za-z0-9-]\.[A-Za-z]{2}|www\.|\d\.\d{1,3}\.\d")
_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})


def _inert(quoted: str) -> None:
    """What no quoted text may hold: a link, a host, a marker of the system, a hidden char."""
    assert not _SCHEME.search(quoted), quoted
    assert not re.search(r"(?i)https?://", quoted), quoted
    assert not _HOST.search(quoted), quoted
    for marker in ("【", "】", "「", "」", "—", "\n", "\r"):
        assert marker not in quoted, (marker, quoted)
    hidden = [c for c in quoted if unicodedata.category(c) in _INVISIBLE]
    assert not hidden, [hex(ord(c)) for c in hidden]


def _split_quotes(text: str, prefix: str = "") -> tuple[list[str], list[list[str]]]:
    """The lines outside quotations, and each quotation's lines (without the quote mark)."""
    outside: list[str] = []
    quotes: list[list[str]] = []
    for line in text.split("\n"):
        bare = line.lstrip(" ")
        if bare.startswith(prefix) and _HEAD.fullmatch(bare[len(prefix) :]):
            quotes.append([])
        elif bare.startswith(prefix + QUOTE_MARK) and quotes:
            quotes[-1].append(bare[len(prefix + QUOTE_MARK) :])
        else:
            outside.append(line)
    return outside, quotes


def _check_quoted_lines(quotes: list[list[str]]) -> None:
    for lines in quotes:
        assert 0 < len(lines) <= MAX_LINES
        for line in lines:
            assert len(line) <= WIDTH + len(CUT_MARK)
            _inert(line)


def assert_text_quotes_only(text: str, without_note: str) -> int:
    """The email text is the one without the note plus quotations; return how many."""
    outside, quotes = _split_quotes(text)
    assert outside == without_note.split("\n")
    _check_quoted_lines(quotes)
    return len(quotes)


def assert_quoted_in_every_channel(out: Rendered, base: Rendered, url: str) -> None:
    """Every channel of `out` is `base` plus inert quotations (see the module docstring)."""
    assert out.subject == base.subject
    assert_text_quotes_only(out.text, base.text)
    outside, quotes = _split_quotes(out.markdown, "> ")
    assert outside == base.markdown.split("\n")
    _check_quoted_lines(quotes)
    for line in (q for lines in quotes for q in lines):  # WeCom markup stays inert
        assert not set(line) & set("<>[]*`#\\"), line
    said = _SMS_QUOTE.findall(out.sms)
    assert len(said) <= 1 and _SMS_QUOTE.sub("", out.sms) == base.sms
    for quoted in said:
        _inert(quoted)
    assert out.sms_has_link == base.sms_has_link
    links = re.findall(r"(?i)https?://[^\s)」]+", "\n".join([out.text, out.sms, out.markdown]))
    assert set(links) <= {url}


def _alert(note: str | None, **changes: Any) -> AlertView:
    alert = AlertView(
        work_point_id="zhaoqing-digital-2024/35",
        number=35,
        title="加强林业数字化应用",
        level=Level.RED,
        previous_level=None,
        reasons=(StallReason.BLOCKED,),
        event="fired",
        silent_working_days=None,
        note=note,
        lead_agencies=("市林业局",),
        fired_at=FIRED,
        ack_url=URL,
        note_author="市林业局",
    )
    return replace(alert, **changes)


def _messages(note: str | None) -> list[Rendered]:
    """The note in every kind of message: each role, reminders, escalations, closure, digest."""
    closed = {"event": "closed", "level": Level.GREEN, "reasons": (), "ack_url": None}
    digest = [
        _alert(note),
        _alert(note, number=8, work_point_id="zhaoqing-digital-2024/8", **closed),
        _alert(None, number=3, work_point_id="zhaoqing-digital-2024/3", level=Level.YELLOW),
    ]
    later = FIRED + timedelta(days=2)
    return [
        render([_alert(note)], recipient_name="市林业局", role="lead"),
        render([_alert(note, note_author=None)], recipient_name="市自然资源局", role="co"),
        render([_alert(note, event="reminder")], recipient_name="市林业局", role="lead"),
        render([_alert(note, event="escalated")], recipient_name=OFFICE, role="office", now=later),
        render([_alert(note, **closed)], recipient_name="市林业局", role="lead"),
        render([_alert(note)], recipient_name="市林业局", role="lead", max_sms_segments=4),
        render(digest, recipient_name=OFFICE, role="office"),
    ]


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_an_injected_note_stays_an_inert_quotation_in_every_channel(case: dict[str, str]) -> None:
    for out, base in zip(_messages(case["note"]), _messages(None), strict=True):
        assert_quoted_in_every_channel(out, base, URL)


def test_the_corpus_covers_what_it_claims() -> None:
    notes = "".join(c["note"] for c in CORPUS)
    for sample in ("\r\n", "\u202e", "\u200b", "【督办", "——", "](http", "<a href", "Bcc:", "/a/"):
        assert sample in notes, sample
    assert max(len(c["note"]) for c in CORPUS) >= 2000 and len(CORPUS) >= 50


def test_a_note_is_quoted_under_its_author_line_by_line() -> None:
    out = render(
        [_alert("林分优化用地审批未完成\nBcc: evil@attacker.example")],
        recipient_name="市林业局",
        role="lead",
        max_sms_segments=3,
    )
    assert (
        "【市林业局 报送说明,原文引用】\n｜ 林分优化用地审批未完成\n"
        "｜ Bcc: evil@attacker[.]example\n" in out.text
    )
    assert "\nBcc:" not in out.text
    assert "> 【市林业局 报送说明,原文引用】\n> ｜ 林分优化用地审批未完成\n" in out.markdown
    assert ",报送说明(市林业局原文):「林分优化用地审批未完成 / Bcc: evil@attacker[.]example」" in (
        out.sms
    )
    unknown = render([_alert("说明", note_author=None)], recipient_name="x", role="co")
    assert "【报送单位 报送说明,原文引用】\n｜ 说明\n" in unknown.text
    closed = render(
        [_alert("验收通过", event="closed", level=Level.GREEN, reasons=(), ack_url=None)],
        recipient_name="市林业局",
        role="lead",
    )
    assert "【督办协调部门 审核意见,原文引用】\n｜ 验收通过\n" in closed.text


def test_links_in_a_note_are_defanged_and_stay_readable() -> None:
    note = "[点此确认](http://evil.example/a/x)\n或 https://www.evil.example 或 10.0.0.1"
    out = render([_alert(note)], recipient_name="市林业局", role="lead", max_sms_segments=4)
    first = "[点此确认](hxxp://evil[.]example/a/x)"
    second = "或 hxxps://www[.]evil[.]example 或 10[.]0[.]0[.]1"
    assert f"｜ {first}\n｜ {second}\n" in out.text
    assert f"「{first} / {second}」" in out.sms
    assert "> ｜ ［点此确认］(hxxp://evil［.］example/a/x)\n" in out.markdown  # and inert markdown


def test_a_long_note_is_bounded_and_says_it_was_cut() -> None:
    out = render([_alert("长" * 3000)], recipient_name="市林业局", role="lead")
    _, [lines] = _split_quotes(out.text)
    assert len(lines) <= MAX_LINES and lines[-1].endswith(CUT_MARK)
    assert sum(len(line) for line in lines) <= 500 + len(CUT_MARK)
    _, [many] = _split_quotes(render([_alert("行\n" * 300)], recipient_name="x", role="lead").text)
    assert len(many) == MAX_LINES and many[-1] == CUT_MARK


# --- the delivered mail, through a real SMTP server ----------------------------------------

FORESTRY = AgencyRef(agency_id=uuid.uuid5(uuid.NAMESPACE_URL, "linye"), name="市林业局")
NATURE = AgencyRef(agency_id=uuid.uuid5(uuid.NAMESPACE_URL, "ziran"), name="市自然资源局")
MAILS = {FORESTRY.name: "linye@zhaoqing.example.cn", NATURE.name: "ziran@zhaoqing.example.cn"}
MONDAY = datetime.fromisoformat("2024-10-21T10:00:00+08:00")
# What the mailer writes; the SMTP sink adds X-Rcpt-To (the envelope's recipients).
HEADERS = {
    "from",
    "to",
    "subject",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "x-rcpt-to",
}


@pytest.fixture
async def notifier(
    make_database: Callable[[str], str], smtp: SmtpSink, spans: Spans
) -> AsyncIterator[NotifierService]:
    settings = NotifierSettings.model_validate(
        {
            "database_url": make_database("notifier"),
            "smtp_port": smtp.port,
            "smtp_timeout_seconds": 5,
            "environment": "test",
            "run_loops": False,
            "escalation_dir": ROOT / "tests" / "data" / "escalation",
            "per_recipient_burst": 2 * len(CORPUS),  # every case mailed at once
        }
    )
    service = build(settings, clock=ManualClock(MONDAY), tracer_provider=spans.provider("n"))
    async with service.sessions() as session, session.begin():
        for agency in (FORESTRY, NATURE):
            session.add(
                AgencyView(id=agency.agency_id, name=agency.name, kind="bureau", snapshot_at=MONDAY)
            )
            contact = ContactIn("email", MAILS[agency.name])
            await replace_contacts(session, agency.agency_id, [contact], MONDAY)
    yield service
    await service.close()


def _storable(note: str) -> bool:
    """Whether PostgreSQL can hold the note: text has no NUL and no lone surrogate (those two
    cases are covered by the rendering test above)."""
    return "\x00" not in note and not any(0xD800 <= ord(c) <= 0xDFFF for c in note)


def _opened(number: int, note: str) -> StallTransition:
    return StallTransition(
        event_id=uuid.uuid4(),
        occurred_at=MONDAY,
        work_point_id=f"zhaoqing-digital-2024/{number}",
        episode_id=uuid.uuid4(),
        kind=StallTransitionKind.OPENED,
        level=Level.RED,
        reason=StallReason.BLOCKED,
        reasons=[StallReason.BLOCKED],
        work_point_number=number,
        work_point_code=str(number),
        work_point_title=f"工作要点{number}",
        lead_agencies=[FORESTRY],
        co_agencies=[NATURE],
        plan_slug="zhaoqing-digital-2024",
        note=note,
    )


async def test_delivered_mail_carries_no_header_recipient_or_link_of_the_note(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    notes = [case["note"] for case in CORPUS if _storable(case["note"])]
    opened = {n: _opened(n, note) for n, note in enumerate(notes, start=1)}
    for transition in opened.values():  # one at a time, so each is a mail of its own
        await notifier.stall_consumer.handle(transition, topics.STALLS)
        assert await notifier.dispatcher.dispatch_once() == 2
    assert len(smtp.messages) == 2 * len(notes)  # a lead and a co-agency each, nobody else
    by_numeral = {chinese_number(n): n for n in opened}
    quoted = 0
    for message in smtp.messages:
        to = message["To"]
        assert message["X-Rcpt-To"] == to and to in MAILS.values()
        assert {k.lower() for k in message} == HEADERS
        assert all(len(message.get_all(k) or []) == 1 for k in HEADERS)
        assert not message.is_multipart() and message.get_content_type() == "text/plain"
        [numeral] = re.findall(r"第(.+?)项", message["Subject"])
        number = by_numeral[numeral]
        body = message.get_content().replace("\r\n", "\n")  # as it went over the wire
        assert "\r" not in body
        [url] = re.findall(r"http://\S+/a/\S+", body)
        name, role = (FORESTRY.name, "lead") if to == MAILS[FORESTRY.name] else (NATURE.name, "co")
        t = opened[number]
        view = AlertView(
            work_point_id=t.work_point_id,
            number=number,
            title=t.work_point_title,
            level=t.level,
            previous_level=None,
            reasons=tuple(t.reasons),
            event="fired",
            silent_working_days=None,
            note=None,
            lead_agencies=(FORESTRY.name,),
            fired_at=t.occurred_at,
            ack_url=url,
        )
        without_note = render([view], recipient_name=name, role=role).text
        quoted += assert_text_quotes_only(body, without_note)
    # Every note but the one with nothing visible in it was quoted, in both mails.
    assert quoted == 2 * (len(notes) - 1)
