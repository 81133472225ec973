"""Create the demo's own topics (deploy/kafka/topics.txt under a prefix); drop older demos'.

python -m scripts.demo.topics --prefix demo1735000000. [--drop-older demo]
The broker does not create topics by itself; each `make demo` replays the year on new topics.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from duban_shared.topics import TopicSpec, read_topic_list

TOPICS = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "topics.txt"


def topic_specs(path: Path = TOPICS) -> list[TopicSpec]:
    """Every topic of the topic list."""
    return read_topic_list(path)


async def prepare(bootstrap: str, prefix: str, drop_older: str | None) -> list[str]:
    """Create the prefixed topics; delete topics of earlier demos (`<drop_older><digits>.`)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        if drop_older:
            old = re.compile(rf"^{re.escape(drop_older)}\d+\.")
            stale = [t for t in existing if old.match(t) and not t.startswith(prefix)]
            if stale:
                await admin.delete_topics(stale)
        new = [
            NewTopic(prefix + name, partitions, 1, topic_configs=configs)
            for name, partitions, configs in topic_specs()
            if prefix + name not in existing
        ]
        if new:
            await admin.create_topics(new)
        return [t.name for t in new]
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m scripts.demo.topics", description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--drop-older", help="delete topics named <this><digits>.*")
    args = parser.parse_args(argv)
    created = asyncio.run(prepare(args.bootstrap, args.prefix, args.drop_older))
    print(f"demo: {len(created)} topics with prefix {args.prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
