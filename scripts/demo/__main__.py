"""Run the simulated year against a running stack: python -m scripts.demo --help.

The clock is the stack's: DUBAN_SIM_CLOCK_START, _RATE, _EPOCH (and _END) as the services got
them, so the simulator and the services agree on the simulated time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import httpx
from duban_shared.clock import SystemClock
from duban_shared.settings import ServiceSettings

from scripts.demo.simulator import Credentials, Services, Simulator, wait_for_clock


def _client_file(path: Path) -> Credentials:
    """Read a client file of `duban-registry create-client` (KEY=value lines)."""
    fields = dict(
        line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if "=" in line
    )
    return Credentials(fields["client_id"].strip(), fields["client_secret"].strip())


def _say(line: str) -> None:
    print(f"demo: {line}", flush=True)


async def _main(args: argparse.Namespace) -> int:
    clock = ServiceSettings().domain_clock()
    timeout = httpx.Timeout(30.0, connect=5.0)
    async with (
        httpx.AsyncClient(base_url=args.registry, timeout=timeout) as registry,
        httpx.AsyncClient(base_url=args.progress, timeout=timeout) as progress,
        httpx.AsyncClient(base_url=args.notifier, timeout=timeout) as notifier,
    ):
        simulator = Simulator(
            Services(registry, progress, notifier, SystemClock()),
            _client_file(Path(args.office_client)),
            clock=clock,
            until=lambda moment: wait_for_clock(clock, moment),
            say=_say,
            plans=args.plan,
        )
        await simulator.setup()
        lines = await simulator.run()
    _say("全年模拟结束 / the simulated year is over:")
    for line in lines:
        _say(f"  {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m scripts.demo", description=__doc__)
    parser.add_argument("--registry", default="http://127.0.0.1:8101")
    parser.add_argument("--progress", default="http://127.0.0.1:8102")
    parser.add_argument("--notifier", default="http://127.0.0.1:8103")
    parser.add_argument(
        "--office-client", required=True, help="client file of an operator or coordinator"
    )
    parser.add_argument(
        "--plan",
        action="append",
        default=[],
        metavar="SLUG",
        help="a plan to play (repeat for several; default: every plan in the registry)",
    )
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
