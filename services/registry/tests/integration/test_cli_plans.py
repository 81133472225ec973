"""The plan commands of duban-registry against a real database: import with a diff and
--confirm, aliases from TOML, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry.cli import main as cli

PLAN_TEXT = (
    Path(__file__).resolve().parents[4] / "data" / "plans" / "zhaoqing-digital-2024.txt"
).read_text()
ALIASES = Path(__file__).resolve().parents[4] / "data" / "agencies" / "zhaoqing-aliases.toml"


@pytest.fixture
def plan_file(tmp_path: Path, make_database: object, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = make_database("registry")  # type: ignore[operator]
    monkeypatch.setenv("DUBAN_REGISTRY_DATABASE_URL", url)
    path = tmp_path / "zhaoqing-digital-2024.txt"
    path.write_text(PLAN_TEXT, encoding="utf-8")
    return path


def test_a_changed_text_is_shown_and_needs_confirm(
    plan_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["import-plan", str(plan_file)]) == 0
    assert "created, version 1; added 50" in capsys.readouterr().out
    assert cli(["import-plan", str(plan_file)]) == 0
    assert "version 1 unchanged (50 work points)" in capsys.readouterr().out

    plan_file.write_text(
        PLAN_TEXT.replace("(市林业局牵头)", "(市林业局牵头,市资源局按职责分工负责)")
    )
    assert cli(["import-plan", str(plan_file)]) == 3
    out = capsys.readouterr().out
    assert "responsibilities changed 1 (35)" in out
    assert '+ {"lead": ["市林业局"], "co": ["市资源局"]}' in out
    assert "Nothing was changed" in out and "--confirm" in out

    assert cli(["import-plan", str(plan_file), "--confirm"]) == 0
    assert "updated, version 2" in capsys.readouterr().out
    assert cli(["import-plan", str(plan_file)]) == 0
    assert "version 2 unchanged" in capsys.readouterr().out


def test_aliases_load_once_and_bad_files_get_a_clear_error(
    plan_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["import-plan", str(plan_file)]) == 0
    assert cli(["load-aliases", str(ALIASES)]) == 0
    assert "aliases: 20 added, 0 already there" in capsys.readouterr().out
    assert cli(["load-aliases", str(ALIASES)]) == 0
    assert "aliases: 0 added, 20 already there" in capsys.readouterr().out

    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[aliases]\n"市某某办" = "市不存在的局"\n', encoding="utf-8")
    assert cli(["load-aliases", str(unknown)]) == 1
    assert "no agency '市不存在的局'" in capsys.readouterr().err

    broken = tmp_path / "broken.toml"
    broken.write_text("aliases = [", encoding="utf-8")
    with pytest.raises(SystemExit, match="not valid TOML"):
        cli(["load-aliases", str(broken)])
    with pytest.raises(SystemExit, match="no such file"):
        cli(["import-plan", str(tmp_path / "missing.txt")])


def test_republish_queues_every_snapshot_again(
    plan_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import os

    import psycopg
    from sqlalchemy.engine import make_url

    assert cli(["import-plan", str(plan_file)]) == 0
    url = make_url(os.environ["DUBAN_REGISTRY_DATABASE_URL"]).set(drivername="postgresql")

    def queued() -> list[dict[str, object]]:
        with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
            rows = conn.execute("SELECT payload FROM outbox WHERE topic LIKE '%work-points%'")
            return [json.loads(bytes(r[0])) for r in rows.fetchall()]

    before = len(queued())
    assert cli(["republish", "--plan", "zhaoqing-digital-2024"]) == 0
    assert "republished 50 work point(s) and 52 agencies" in capsys.readouterr().out
    snapshots = queued()[before:]
    assert len(snapshots) == 50
    assert {s["starts_on"] for s in snapshots} == {"2024-01-01"}
    with pytest.raises(SystemExit, match="no plan 'no-such-plan'"):
        cli(["republish", "--plan", "no-such-plan"])


PLAN_FILES = Path(__file__).resolve().parents[1] / "data" / "plan-files"


def test_the_plan_as_word_pdf_web_page_and_gb18030_changes_nothing(
    plan_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docx_file = PLAN_FILES / "zhaoqing-2024.docx"
    assert cli(["import-plan", str(docx_file), "--slug", "zhaoqing"]) == 0
    assert "created, version 1; added 50" in capsys.readouterr().out
    # Another format is another source text (a new version) with nothing in it changed.
    for name in ("zhaoqing-2024.pdf", "zhaoqing-2024.html", "zhaoqing-2024.gb18030.txt"):
        assert cli(["import-plan", str(PLAN_FILES / name), "--slug", "zhaoqing"]) == 0
        assert "unchanged (50 work points)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        cli(["import-plan", str(PLAN_FILES / "scanned.pdf"), "--slug", "zhaoqing"])
    assert "[plan_file_scanned]" in str(exited.value.code)
