"""Rounds: concurrent questions share one answer_all call per round (no database needed)."""

from __future__ import annotations

import asyncio

import pytest
from duban_shared import attributes as attr
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from progress.store.ingest import Rounds


class Gate:
    """An answer_all that records each round and answers only when released."""

    def __init__(self) -> None:
        self.rounds: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail = False

    async def answer_all(self, questions: list[int]) -> list[int]:
        self.rounds.append(list(questions))
        await self.release.wait()
        if self.fail:
            raise RuntimeError("database gone")
        return [q * 10 for q in questions]


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_questions_asked_during_a_round_share_the_next_one() -> None:
    gate = Gate()
    rounds: Rounds[int, int] = Rounds(gate.answer_all)
    first = asyncio.create_task(rounds.ask(1))
    await _settle()
    assert gate.rounds == [[1]]  # a question alone is asked at once
    later = [asyncio.create_task(rounds.ask(q)) for q in (2, 3, 4)]
    await _settle()
    assert gate.rounds == [[1]]  # waiting for the round in flight
    gate.release.set()
    assert await first == 10
    assert [await t for t in later] == [20, 30, 40]
    assert gate.rounds == [[1], [2, 3, 4]]


async def test_a_round_takes_at_most_its_limit() -> None:
    gate = Gate()
    gate.release.set()
    rounds: Rounds[int, int] = Rounds(gate.answer_all, most=2)
    answers = await asyncio.gather(*(rounds.ask(q) for q in range(5)))
    assert answers == [0, 10, 20, 30, 40]
    assert gate.rounds == [[0, 1], [2, 3], [4]]


async def test_an_error_reaches_every_asker_of_its_round_and_the_next_round_works() -> None:
    gate = Gate()
    rounds: Rounds[int, int] = Rounds(gate.answer_all)
    gate.fail = True
    asked = [asyncio.create_task(rounds.ask(q)) for q in (1, 2)]
    gate.release.set()
    for task in asked:
        with pytest.raises(RuntimeError, match="database gone"):
            await task
    gate.fail = False
    assert await rounds.ask(3) == 30


async def test_an_asker_that_went_away_does_not_disturb_the_others() -> None:
    gate = Gate()
    rounds: Rounds[int, int] = Rounds(gate.answer_all)
    blocker = asyncio.create_task(rounds.ask(0))
    await _settle()
    gone = asyncio.create_task(rounds.ask(1))
    stays = asyncio.create_task(rounds.ask(2))
    await _settle()
    gone.cancel()
    gate.release.set()
    assert (await blocker, await stays) == (0, 20)
    assert gone.cancelled()


async def test_a_round_is_its_own_trace_linked_both_ways_with_the_requests_it_answered() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    gate = Gate()
    rounds: Rounds[int, int] = Rounds(gate.answer_all, name="look-up round", tracer=tracer)

    async def request(question: int) -> int:
        with tracer.start_as_current_span(f"request {question}"):
            return await rounds.ask(question)

    first = asyncio.create_task(request(1))
    await _settle()
    later = [asyncio.create_task(request(q)) for q in (2, 3)]
    await _settle()
    gate.release.set()
    assert [await t for t in (first, *later)] == [10, 20, 30]

    spans = {s.name: s for s in exporter.get_finished_spans()}
    requests = {q: spans[f"request {q}"] for q in (1, 2, 3)}
    [one, two] = [s for s in exporter.get_finished_spans() if s.name == "look-up round"]
    for round_span, answered in ((one, [1]), (two, [2, 3])):
        assert round_span.parent is None  # no request's child: the round serves several
        assert round_span.attributes == {attr.ROUND_SIZE: len(answered)}
        assert [link.context.span_id for link in round_span.links] == [
            requests[q].context.span_id for q in answered
        ]
        for q in answered:
            [back] = requests[q].links
            assert back.context.span_id == round_span.context.span_id
            assert back.attributes == {attr.LINK_KIND: "ingest round"}
