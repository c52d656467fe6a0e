"""``calbridge changes``: the change feed as JSON lines, from the store alone (``service.md``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from ..config import Config
from ..errors import StoreError
from ..feed import feed


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    c = sub.add_parser("changes", parents=[common], help="the change feed: one JSON line per committed change")
    c.add_argument("--account", help="only this account's changes")
    c.add_argument("--after", type=int, metavar="SEQ", help="start after this number (default: the oldest kept)")
    c.add_argument("--consumer", metavar="NAME", help="start after NAME's offset and store it after each line")
    c.add_argument("--follow", action="store_true", help="keep printing as changes commit, until interrupted")
    c.add_argument("--limit", type=int, metavar="N", help="at most N lines")


async def run(args: argparse.Namespace, config: Config) -> int:
    from ..store import open_store

    if args.after is not None and args.after < 0:
        raise StoreError("--after: expected a sequence number >= 0")
    if args.limit is not None and args.limit < 1:
        raise StoreError("--limit: expected at least 1")
    if args.account:
        config.account(args.account)  # an unknown name is a usage error (exit 2), as for `events`
    path = config.store_path
    if config.store_url is None and not path.exists():
        print(f"calbridge: no store at {path} yet; run `calbridge sync` first", file=sys.stderr)
        return 1
    # A consumer stores its offset: only then is a writable handle needed.
    store = open_store(config, create=False, read_only=args.consumer is None)
    left = args.limit
    async with store:
        with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
            batches = feed(
                store, args.consumer, after=args.after, account=args.account, follow=args.follow,
                limit=min(left or 500, 500),
            )  # fmt: skip
            async for batch in batches:
                for entry in batch.entries:
                    sys.stdout.write(entry.to_line() + "\n")
                    sys.stdout.flush()
                    if args.consumer is not None:  # after the line is out: at-least-once
                        await store.set_consumer_offset(args.consumer, entry.seq)
                    if left is not None:
                        left -= 1
                        if left == 0:
                            return 0
    return 0
