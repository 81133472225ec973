"""The reporting form (填报) over the in-process stack: a report from the form goes through the
API's ingestion (Kafka, the status consumer), with evidence files kept by progress and the
person who filed it; refusals are said in Chinese with their codes. (The browser tests drive
the form in Chromium.)"""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from pathlib import Path

import httpx
from docx import Document
from duban_shared import attributes as attr
from opentelemetry.trace import SpanKind
from progress.api.board.session import COOKIE, csrf_token
from progress.main import create_app as progress_app
from progress.store.models import StatusReport
from sqlmodel import col, func, select

from tests.harness import wait_for
from tests.stack import PLAN, Stack

FORM = f"/board/work-points/{PLAN}/35/report"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def docx_bytes() -> bytes:
    document = Document()
    document.add_paragraph("林分优化提升进展情况")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def renamed_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "not a document")
    return out.getvalue()


def use_evidence_dir(stack: Stack, folder: Path, **more: object) -> None:
    stack.progress.settings = stack.progress.settings.model_copy(
        update={"evidence_dir": str(folder), **more}
    )


async def cookie_of(stack: Stack, token: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={token}"}


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, f"no hidden {name} in the form"
    return found.group(1)


async def reports_on_35(stack: Stack) -> list[StatusReport]:
    async with stack.progress.sessions() as session:
        rows = await session.exec(
            select(StatusReport).where(StatusReport.work_point_id == f"{PLAN}/35")
        )
        return list(rows)


async def test_a_person_reports_from_the_form_with_evidence_once_though_it_is_sent_twice(
    stack: Stack, tmp_path: Path
) -> None:
    use_evidence_dir(stack, tmp_path / "evidence")
    person = await cookie_of(stack, await stack.person_token(stack.forestry, "lin.xiaoming"))
    http = stack.progress_http

    form = await http.get(FORM, headers=person)
    assert form.status_code == 200, form.text
    html = form.text
    # The work point's colour, pace line and the targets with their units and values.
    assert 'class="badge c-' in html and 'class="pace-line"' in html
    assert '<label for="kpi-0">林分优化</label>' in html
    assert '<p class="hint" id="hint-kpi-0">目标:13 万亩</p>' in html
    assert '<label for="kpi-1">森林抚育</label>' in html
    assert 'enctype="multipart/form-data"' in html
    docx = docx_bytes()
    fields = {
        "csrf": hidden(html, "csrf"),
        "event_id": hidden(html, "event_id"),
        "occurred_at": hidden(html, "occurred_at"),
        "status": "on_track",
        "percent": "40",
        "kpi-0": "8.2",
        "note": "已完成林分优化提升8.2万亩",
        "evidence_links": "https://lyj.zhaoqing.gov.cn/reports/2024-09.pdf\n",
    }
    files = [
        ("evidence_files", ("现场照片.png", PNG, "image/png")),
        ("evidence_files", ("进展报告.docx", docx, "application/octet-stream")),
        # larger than the API's 1 MiB body limit: the form's route takes its files
        ("evidence_files", ("验收报告.pdf", PDF + b"0" * (3 << 19), "application/pdf")),
    ]
    sent = await http.post(FORM, data=fields, files=files, headers=person)
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"].startswith(f"/board/work-points/{PLAN}/35?reported=")
    # The same form again (a double click, a reload): the same report, not a second one.
    again = await http.post(FORM, data=fields, files=files, headers=person)
    assert again.status_code == 303, again.text
    event_id = uuid.UUID(fields["event_id"])

    async def applied() -> bool:
        return any(r.event_id == event_id for r in await reports_on_35(stack))

    await wait_for(applied, what="the form's report to be applied")
    [row] = await reports_on_35(stack)
    assert row.reported_by == "lin.xiaoming"
    assert row.agency_id == stack.forestry_id
    assert row.status == "on_track" and row.percent == 40
    assert row.kpis == {"林分优化": 8.2}
    assert row.note == "已完成林分优化提升8.2万亩"
    link, *kept = row.evidence
    assert link == "https://lyj.zhaoqing.gov.cn/reports/2024-09.pdf"
    assert len(kept) == 3
    assert all(
        re.fullmatch(
            rf"http://[^/]+/board/evidence/{stack.forestry_id}/[0-9a-f]{{64}}\.(png|docx|pdf)", u
        )
        for u in kept
    ), kept
    async with stack.progress.sessions() as session:
        count = select(func.count()).where(col(StatusReport.event_id) == event_id)
        assert (await session.exec(count)).one() == 1

    # Traced as an API report is: the form's request span carries the work point, and the
    # status event is produced in its trace.
    servers = [
        s
        for s in stack.spans.all()
        if s.kind == SpanKind.SERVER
        and s.attributes
        and s.attributes.get(attr.WORK_POINT_ID) == f"{PLAN}/35"
        and s.name.endswith("/report")
    ]
    assert servers, [s.name for s in stack.spans.all() if s.kind == SpanKind.SERVER]
    assert servers[0].context is not None
    in_trace = stack.spans.in_trace(servers[0].context.trace_id)
    assert any(s.kind == SpanKind.PRODUCER for s in in_trace), [s.name for s in in_trace]

    # The timeline names the person.
    page = await http.get(f"/board/work-points/{PLAN}/35", headers=person)
    assert "市林业局报送:正常推进(填报人:lin.xiaoming)" in page.text
    assert "进度 40%;林分优化 8.2" in page.text

    # The files are served to the agency's staff and to the office, to no other agency.
    docx_url = next(u for u in kept if u.endswith(".docx"))
    path = "/" + docx_url.split("/", 3)[3]
    mine = await http.get(path, headers=person)
    assert mine.status_code == 200 and mine.content == docx
    assert mine.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert mine.headers["content-disposition"].startswith("attachment")
    pdf_url = next(u for u in kept if u.endswith(".pdf"))
    pdf = await http.get("/" + pdf_url.split("/", 3)[3], headers=person)
    assert pdf.status_code == 200 and len(pdf.content) == len(PDF) + (3 << 19)
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("inline")
    assert "sandbox" in pdf.headers["content-security-policy"]
    office = await http.get(path, headers=await cookie_of(stack, await stack.token(stack.office)))
    assert office.status_code == 200 and office.content == docx
    stranger = await stack.client_for("市公安局")
    theirs = await http.get(path, headers=await cookie_of(stack, await stack.token(stranger)))
    assert theirs.status_code == 403 and "evidence_not_yours" in theirs.text
    for name in ("..%2F..%2Fetc%2Fpasswd", "passwd", "0" * 64 + ".png"):
        missing = await http.get(f"/board/evidence/{stack.forestry_id}/{name}", headers=person)
        assert missing.status_code == 404, name
    assert "unknown_evidence" in missing.text


async def test_the_form_says_what_is_wrong_next_to_each_field_in_chinese(
    stack: Stack, tmp_path: Path
) -> None:
    use_evidence_dir(stack, tmp_path / "evidence", evidence_max_bytes=2048)
    forestry = await cookie_of(stack, await stack.token(stack.forestry))
    http = stack.progress_http
    html = (await http.get(FORM, headers=forestry)).text
    base = {
        "csrf": hidden(html, "csrf"),
        "event_id": hidden(html, "event_id"),
        "occurred_at": hidden(html, "occurred_at"),
        "status": "at_risk",
    }
    bad = await http.post(
        FORM,
        data={**base, "percent": "四十", "kpi-0": "很多", "evidence_links": "ftp://x.example/a"},
        files=[
            ("evidence_files", ("报告.pdf", "这不是PDF".encode(), "application/pdf")),
            ("evidence_files", ("表格.docx", renamed_zip(), "application/octet-stream")),
        ],
        headers=forestry,
    )
    assert bad.status_code == 422, bad.text
    page = bad.text
    assert 'id="err-percent"' in page and "进度请填写0到100之间的整数。" in page
    assert 'id="err-kpi-0"' in page and "请填写数字,例如 8.2。" in page
    assert 'id="err-evidence_files" data-code="evidence_type_not_allowed"' in page
    assert "报告.pdf 不是允许的文件类型" in page and "表格.docx 不是允许的文件类型" in page
    assert 'aria-invalid="true"' in page
    assert 'value="四十"' in page  # refilled
    assert hidden(page, "event_id") == base["event_id"]  # nothing was sent: the same form
    links = await http.post(
        FORM, data={**base, "evidence_links": "ftp://x.example/a"}, headers=forestry
    )
    assert links.status_code == 422 and 'id="err-evidence_links"' in links.text
    large = await http.post(
        FORM,
        data=base,
        files=[("evidence_files", ("大文件.pdf", PDF + b"0" * 4096, "application/pdf"))],
        headers=forestry,
    )
    assert large.status_code == 422
    assert 'data-code="evidence_too_large"' in large.text
    assert not any((tmp_path / "evidence").rglob("*.*"))  # nothing refused was kept

    # No CSRF token: refused with its code.
    forged = await http.post(FORM, data={**base, "csrf": "x"}, headers=forestry)
    assert forged.status_code == 403 and "csrf_failed" in forged.text

    # The same form id for another report: said so, and a new form id is given.
    first = await http.post(FORM, data={**base, "note": "第一次"}, headers=forestry)
    assert first.status_code == 303, first.text
    reused = await http.post(FORM, data={**base, "note": "改了说明"}, headers=forestry)
    assert reused.status_code == 409, reused.text
    assert 'data-code="event_id_reused"' in reused.text
    assert "这份表单已经提交过" in reused.text
    assert hidden(reused.text, "event_id") != base["event_id"]

    # A body over even the form's limit (files x size + 1 MiB) is refused before it is read,
    # with a page in Chinese (other routes answer 413 in JSON).
    use_evidence_dir(stack, tmp_path / "evidence", evidence_max_files=1, evidence_max_bytes=1024)
    app = progress_app(stack.progress)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as small:
        big = await small.post(
            FORM,
            data=base,
            files=[("evidence_files", ("大.pdf", PDF + b"0" * (2 << 20), "application/pdf"))],
            headers=forestry,
        )
    assert big.status_code == 413, big.text
    assert big.headers["content-type"].startswith("text/html")
    assert "body_too_large" in big.text and "提交的内容过大:每份报送最多1个文件" in big.text


async def test_the_office_has_no_form_and_another_agency_is_refused_with_a_code(
    stack: Stack,
) -> None:
    http = stack.progress_http
    office = await cookie_of(stack, await stack.token(stack.office))
    page = await http.get(FORM, headers=office)
    assert page.status_code == 403 and "office_does_not_report" in page.text
    assert "协调部门不填报进展" in page.text
    wp = await http.get(f"/board/work-points/{PLAN}/35", headers=office)
    assert "填报本项进展" not in wp.text

    stranger_token = await stack.token(await stack.client_for("市公安局"))
    stranger = await cookie_of(stack, stranger_token)
    refused = await http.get(FORM, headers=stranger)
    assert refused.status_code == 403
    assert "not_your_work_point" in refused.text and "无权查看" in refused.text
    posted = await http.post(
        FORM, data={"csrf": csrf_token(stranger_token), "status": "done"}, headers=stranger
    )
    assert posted.status_code == 403 and "not_your_work_point" in posted.text

    forestry = await cookie_of(stack, await stack.token(stack.forestry))
    own = await http.get(f"/board/work-points/{PLAN}/35", headers=forestry)
    assert f'href="{FORM}"' in own.text


async def test_the_api_records_the_person_a_token_names(stack: Stack) -> None:
    person_token = await stack.person_token(stack.forestry, "chen.lin")
    by_person = await stack.post_event(person_token, 35, "on_track", percent=10)
    by_system = await stack.post_event(stack.forestry, 35, "on_track", percent=20)
    await stack.until_applied(by_person, by_system)
    people = {r.percent: r.reported_by for r in await reports_on_35(stack)}
    assert people == {10: "chen.lin", 20: None}
    history = await stack.progress_http.get(
        f"/v1/work-points/{PLAN}/35/history/verify",
        headers=await stack.auth(stack.office),
    )
    assert history.status_code == 200, history.text
    assert history.json()["ok"] is True  # the chain covers reported_by and still holds
