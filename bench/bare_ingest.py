"""The anchor of bench/ingestion.py: the simplest correct ingestion endpoint.

A bare FastAPI app with progress's own request model (`StatusReportIn`), one aiokafka producer
with acks=all and idempotence (aiokafka's other defaults), answering 202 with the partition and
offset once the broker acknowledged the report. No authentication, no idempotency store, no
checks against the plan, no tracing, no middleware: what any ingestion has to do, and nothing
more. It runs under uvicorn as `duban-progress serve` does (same event loop and HTTP parser),
in a process of its own.

Run: .venv/bin/python bench/bare_ingest.py --port N --bootstrap HOST:PORT --topic NAME
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from progress.api.schemas import Accepted, StatusReportIn


def bare_app(bootstrap: str, topic: str) -> FastAPI:
    """The app: POST /v1/events (202 after acks=all) and GET /healthz."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, client_id="bare"
        )
        await app.state.producer.start()
        try:
            yield
        finally:
            await app.state.producer.stop()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/events", status_code=202)
    async def post_event(report: StatusReportIn) -> Accepted:
        producer: AIOKafkaProducer = app.state.producer
        meta = await producer.send_and_wait(
            topic, value=report.model_dump_json().encode(), key=report.work_point_id.encode()
        )
        return Accepted(event_id=report.event_id, partition=meta.partition, offset=meta.offset)

    return app


def main() -> None:
    """Serve the app on loopback until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    args = parser.parse_args()
    uvicorn.run(bare_app(args.bootstrap, args.topic), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
