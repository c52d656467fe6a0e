"""``calbridge run``: the service (:mod:`calbridge.service`) until SIGTERM or SIGINT.

Exit 0 after a clean stop, 1 when the store cannot be opened or the listen address cannot be bound,
2 for a bad config (raised as :class:`ConfigError`, said by ``main``). One line per finished round on
stderr, from the ``calbridge.service`` logger.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config import Config, Listen, parse_listen
from ..errors import StoreBusy

if TYPE_CHECKING:
    from ..service import Service
    from ..store.base import Store


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    r = sub.add_parser("run", parents=[common], help="keep every calendar fresh (push and scheduled rounds)")
    r.add_argument("--account", help="only this account")
    r.add_argument("--worker", metavar="NAME", help="this worker's name (default hostname:pid)")
    r.add_argument("--listen", metavar="HOST:PORT", help="overrides service.listen")
    r.add_argument("--unsubscribe", action="store_true", help="remove the push subscriptions on a clean stop")


def _logging(verbose: bool) -> None:
    """Round lines (INFO of ``calbridge.service``) on stderr, bare; other calbridge records only when
    they are errors (a bug), unless ``-v`` already logs everything."""
    service = logging.getLogger("calbridge.service")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    service.addHandler(handler)
    service.setLevel(logging.INFO)
    service.propagate = False
    if not verbose:
        errors = logging.StreamHandler(sys.stderr)
        errors.setLevel(logging.ERROR)
        errors.setFormatter(logging.Formatter("calbridge: %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("calbridge").addHandler(errors)


async def _serve(service: Service, worker: str) -> None:
    """Serve until SIGTERM/SIGINT; a signal while it still waits for the store's lock ends the wait."""
    loop = asyncio.get_running_loop()
    entering = asyncio.ensure_future(service.__aenter__())

    def on_signal() -> None:
        service.stop()
        entering.cancel()  # a no-op once it has entered

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        try:
            await entering
        except asyncio.CancelledError:
            if entering.cancelled():
                return  # stopped before it started: a clean stop
            raise
        try:
            where = "" if service.port is None else f", listening on {service.listen_host}:{service.port}"
            logging.getLogger("calbridge.service").info("calbridge run: worker %s%s", worker, where)
            await service.serve()
        finally:
            await service.__aexit__(None, None, None)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def cmd_run(args: argparse.Namespace, config: Config, clock: Callable[[], dt.datetime]) -> int:
    from ..service import ListenError, Service
    from ..store import open_store

    if args.account:
        config.account(args.account)
    listen: Listen | None = parse_listen(args.listen, "--listen") if args.listen else None
    worker = args.worker or f"{socket.gethostname()}:{os.getpid()}"
    _logging(bool(getattr(args, "verbose", False)))

    def service(store: Store, lock_wait: float | None) -> Service:
        return Service(
            config,
            store,
            clock=clock,
            accounts=[args.account] if args.account else None,
            listen=listen,
            unsubscribe=args.unsubscribe,
            lock_wait=lock_wait,
            worker=worker,
        )

    async with open_store(config) as store:
        try:
            try:
                await _serve(service(store, 0), worker)
            except StoreBusy as exc:
                print(f"calbridge: {exc}; waiting for it to finish…", file=sys.stderr)
                await _serve(service(store, None), worker)
        except ListenError as exc:
            print(f"calbridge: {exc}", file=sys.stderr)
            return 1
    return 0
