"""Property-based fuzzing of the three services' HTTP APIs against their OpenAPI documents.

Schemathesis (every check: no server error, documented status codes, content types, headers
and response schemas, schema-invalid data refused, schema-valid data accepted, methods and
authentication) drives each service through real HTTP: uvicorn on loopback in front of the
running stack (real Kafka and PostgreSQL), with the coordinating office's token and then with an
agency system's. A failure is a defect of the service, never filtered out of the run; the 422s
of business rules a schema cannot state are named per operation in data/schemathesis.toml.

The run is bounded (`DUBAN_FUZZ_MAX_EXAMPLES` cases per operation and phase, a fixed seed) so
the suite stays within minutes on two cores; each run's figures (cases, checks, failures) are
printed and written to test-artifacts/fuzz/.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from notifier.main import create_app as notifier_app
from progress.main import create_app as progress_app
from registry.main import create_app as registry_app

from tests.harness import ROOT, wait_for
from tests.stack import Stack

MAX_EXAMPLES = int(os.environ.get("DUBAN_FUZZ_MAX_EXAMPLES", "15"))
SEED = int(os.environ.get("DUBAN_FUZZ_SEED", "20240902"))
ARTIFACTS = ROOT / "test-artifacts" / "fuzz"
CONFIG = Path(__file__).parent / "data" / "schemathesis.toml"


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve an app with uvicorn on a free loopback port, in this event loop; yield its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))

    async def listening() -> bool:
        return bool(server.started)

    await wait_for(listening, what="uvicorn to listen")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def fuzz(base_url: str, token: str, name: str, phases: str) -> dict[str, Any]:
    """Run schemathesis against one service with one token; return its JSON run report."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report = ARTIFACTS / f"{name}.json"
    report.unlink(missing_ok=True)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--phases",
        phases,
        # One worker: the server shares this process's event loop anyway, and schemathesis's
        # schema walking is not thread-safe on Python 3.11 ("AST constructor recursion depth
        # mismatch").
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {token}",
        "--report",
        "json,junit,ndjson",
        "--report-json-path",
        str(report),
        "--report-junit-path",
        str(ARTIFACTS / f"{name}.junit.xml"),
        "--report-ndjson-path",
        str(ARTIFACTS / f"{name}.ndjson"),
    ]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=ARTIFACTS,  # its cache (.schemathesis/) stays with the reports
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    (ARTIFACTS / f"{name}.txt").write_text(text)
    print(text[-3000:])
    assert report.exists(), text[-4000:]
    data: dict[str, Any] = json.loads(report.read_text())
    data["exit_code"] = process.returncode
    data["checks"] = count_checks(ARTIFACTS / f"{name}.ndjson")
    return data


def count_checks(events: Path) -> Counter[str]:
    """How many checks ran, by outcome, from a run's NDJSON event stream."""
    counts: Counter[str] = Counter()
    with events.open() as lines:
        for line in lines:
            if not line.startswith('{"ScenarioFinished"'):
                continue
            recorder = json.loads(line)["ScenarioFinished"]["recorder"]
            for results in recorder.get("checks", {}).values():
                for result in results:
                    counts[result["status"]] += 1
                    counts["total"] += 1
    return counts


@pytest.mark.timeout(900)
async def test_fuzzing_finds_no_failure_in_any_service(stack: Stack) -> None:
    apps = {
        "registry": registry_app(stack.registry),
        "progress": progress_app(stack.progress),
        "notifier": notifier_app(stack.notifier),
    }
    # Both tokens first: the office's run may revoke or rotate any client, the agency's too
    # (a token already issued stays valid until it expires).
    tokens = {
        "office": await stack.token(stack.office),
        "agency": await stack.token(stack.forestry),
    }
    # The office may call every operation: its runs have every phase, the coverage phase's
    # boundary and type cases included. An agency is refused most changes (403) before its
    # input is read, so its runs are examples, fuzzing and stateful sequences.
    phases = {"office": "examples,coverage,fuzzing,stateful", "agency": "examples,fuzzing,stateful"}
    failed = []
    async with (
        serving(apps["registry"]) as registry,
        serving(apps["progress"]) as progress,
        serving(apps["notifier"]) as notifier,
    ):
        urls = {"registry": registry, "progress": progress, "notifier": notifier}
        for role in ("office", "agency"):
            # The three services at once: schemathesis generates in its own processes while
            # the services answer on this event loop.
            results = await asyncio.gather(
                *(
                    fuzz(url, tokens[role], f"{service}-{role}", phases[role])
                    for service, url in urls.items()
                )
            )
            for service, result in zip(urls, results, strict=True):
                figures = {
                    "run": f"{service} as {role}",
                    "operations": result["operations"]["tested"],
                    "cases": result["test_cases"]["generated"],
                    "checks": result["checks"]["total"],
                    "checks_failed": result["checks"]["failure"],
                    "failures": result["test_cases"]["unique_failures"],
                    "errors": len(result["errors"]),
                    "seconds": round(result["running_time"], 1),
                }
                print("fuzz figures:", json.dumps(figures))
                with (ARTIFACTS / "figures.ndjson").open("a") as record:
                    record.write(json.dumps(figures) + "\n")
                if result["exit_code"] != 0:
                    failed.append(f"{service} as {role}")
    assert not failed, f"fuzzing failed for {failed}: see test-artifacts/fuzz/*.txt"
