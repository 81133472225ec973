"""The office reviews a plan text before importing it: POST /v1/plans/preview gives the parse
report, an import takes corrections, and an item without agencies is never dropped silently.
Also the command line's --dry-run and --corrections, against a real database."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from registry.cli import main as cli
from registry.service import RegistryService

from tests.stack import bearer

TEXT = (
    "东岭市数字政府建设2025年工作要点\n东岭市人民政府办公室\n2025年3月12日\n"
    "一、夯实基础\n1.建设网络，9月底前完成。（市工信局、市通信办按职责分工负责）\n"
    "2.加强学习。\n"
    "二、完善制度\n1.完善制度，新增标准5项。（市林业局牵头）\n"
)


@pytest.fixture
async def office(registry: RegistryService) -> dict[str, str]:
    return await bearer(registry, "coordinator")


async def test_the_preview_reports_without_importing(
    http: httpx.AsyncClient, office: dict[str, str]
) -> None:
    response = await http.post("/v1/plans/preview", json={"text": TEXT}, headers=office)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["numbering"] == "per_section"
    assert [(w["code"], w["line"]) for w in report["work_points"]] == [("1.1", 5), ("2.1", 8)]
    assert [(u["code"], u["line"]) for u in report["unmarked"]] == [("1.2", 6)]
    assert [n["code"] for n in report["notes"]] == ["unmarked_item"]
    # 市林业局 is an agency of the imported 2024 plan; the others would be created.
    assert {a["name"]: a["new"] for a in report["agencies"]} == {
        "市工信局": False,
        "市通信办": True,
        "市林业局": False,
    }
    plans = (await http.get("/v1/plans", headers=office)).json()
    assert [p["slug"] for p in plans["items"]] == ["zhaoqing-digital-2024"]


async def test_the_preview_names_the_line_a_text_fails_on(
    http: httpx.AsyncClient, office: dict[str, str]
) -> None:
    broken = TEXT.replace("二、完善制度\n1.", "二、完善制度\n5.")
    response = await http.post("/v1/plans/preview", json={"text": broken}, headers=office)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "work_point_numbering" and body["details"] == {"line": 8}
    assert "line 8" in body["message"]


async def test_only_the_office_previews(http: httpx.AsyncClient, registry: RegistryService) -> None:
    forestry = await bearer(registry, "agency", "市林业局")
    response = await http.post("/v1/plans/preview", json={"text": TEXT}, headers=forestry)
    assert response.status_code == 403


async def test_an_import_with_an_unmarked_item_is_refused_until_the_office_decides(
    http: httpx.AsyncClient, office: dict[str, str]
) -> None:
    url = "/v1/plans/dongling-2025/versions"
    refused = await http.post(url, json={"text": TEXT}, headers=office)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "unmarked_items"
    assert refused.json()["details"] == {"items": [{"code": "1.2", "line": 6}]}

    corrections = {"1.2": {"lead": ["市委组织部"], "co": ["市人社局"]}}
    applied = await http.post(url, json={"text": TEXT, "corrections": corrections}, headers=office)
    assert applied.status_code == 200, applied.text
    assert applied.json()["plan_created"] is True
    points = (await http.get("/v1/plans/dongling-2025/work-points", headers=office)).json()
    assert [p["title"] for p in points["items"]] == [
        "建设网络，9月底前完成",
        "加强学习",
        "完善制度，新增标准5项",
    ]
    assert points["items"][0]["policy"]["due_on"] == "2025-09-30"  # from 9月底前

    # The same text with other decisions is another version, shown first as a diff.
    skipped = await http.post(
        url, json={"text": TEXT, "skip_unmarked": True, "confirm": True}, headers=office
    )
    assert skipped.status_code == 200, skipped.text
    assert skipped.json()["version"] == 2
    points = (await http.get("/v1/plans/dongling-2025/work-points", headers=office)).json()
    assert len(points["items"]) == 2


async def test_bad_corrections_get_clear_errors(
    http: httpx.AsyncClient, office: dict[str, str]
) -> None:
    url = "/v1/plans/dongling-2025/versions"
    for corrections, code in (
        ({"9.9": {"lead": ["市工信局"]}}, "unknown_item"),
        ({"1.2": {"co": ["市工信局"]}}, "correction_needs_lead"),
    ):
        response = await http.post(
            url, json={"text": TEXT, "corrections": corrections}, headers=office
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code
    response = await http.post(
        url, json={"text": TEXT, "corrections": {"x.1": {"lead": ["a"]}}}, headers=office
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


def test_the_command_line_dry_run_and_corrections(
    tmp_path: Path,
    make_database: object,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DUBAN_REGISTRY_DATABASE_URL", make_database("registry"))  # type: ignore[operator]
    plan = tmp_path / "dongling-2025.txt"
    plan.write_text(TEXT, encoding="utf-8")
    assert cli(["import-plan", str(plan), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "numbering per_section: 2 sections, 2 work points, 1 unmarked" in out
    assert "unmarked 1.2 line 6: 加强学习。" in out
    assert cli(["import-plan", str(plan), "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["unmarked"] == 1

    with pytest.raises(SystemExit) as refused:
        cli(["import-plan", str(plan)])
    assert "[unmarked_items]" in str(refused.value)
    fixes = tmp_path / "fixes.json"
    fixes.write_text(json.dumps({"1.2": {"lead": ["市委组织部"]}}), encoding="utf-8")
    assert cli(["import-plan", str(plan), "--corrections", str(fixes)]) == 0
    assert "created, version 1; added 3" in capsys.readouterr().out
    fixes.write_text('{"1.2": {"lead": []}}', encoding="utf-8")
    with pytest.raises(SystemExit) as bad:
        cli(["import-plan", str(plan), "--corrections", str(fixes)])
    assert "[bad_corrections]" in str(bad.value)
