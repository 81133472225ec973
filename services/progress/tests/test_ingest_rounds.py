"""Rounds: concurrent questions share one answer_all call per round (no database needed)."""

from __future__ import annotations

import asyncio

import pytest
from progress.ingest_store import Rounds


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
