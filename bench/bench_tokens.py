"""A fresh process per run (every CLI run): how many times ``calbridge sync``, started as a new
process N times against the Google and Feishu emulators, asks their token endpoints.

Run: ``python bench/bench_tokens.py [--runs N]`` (default 5). The goal (issue 11): access tokens are
reused across processes (kept in the store's secret slot until they near their expiry), so N runs
within the token's life ask once per account.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from calbridge.testing.server import ThreadedServer
from calbridge_providers.feishu.emulator import FeishuEmulator
from calbridge_providers.google.emulator import GoogleEmulator

T0 = dt.datetime.now(dt.UTC).replace(microsecond=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    google, feishu = GoogleEmulator(), FeishuEmulator()
    google.add_event("g", T0, T0 + dt.timedelta(hours=1))
    feishu.add_event("f", T0, T0 + dt.timedelta(hours=1))
    with tempfile.TemporaryDirectory() as tmp, ThreadedServer(google.make_app()) as g, \
            ThreadedServer(feishu.make_app) as f:  # fmt: skip
        config = Path(tmp) / "calbridge.yaml"
        accounts = [google.account_config(name="g", base_url=g.url, ca_file=None),
                    feishu.account_config(name="f", base_url=f.url, ca_file=None)]  # fmt: skip
        config.write_text(yaml.safe_dump({"store": "sqlite:///mirror.db", "accounts": accounts}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE")}
        started = time.perf_counter()
        for i in range(args.runs):
            env["CALBRIDGE_NOW"] = (T0 + dt.timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
            cmd = [sys.executable, "-m", "calbridge.cli.main", "-c", str(config), "sync"]
            subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=True)
        wall = time.perf_counter() - started
        grants = len(google.state.token_grants), len(feishu.requests("/tenant_access_token/"))
    print(f"{args.runs} processes within the tokens' life: Google token requests {grants[0]}, "
          f"Feishu tenant token requests {grants[1]} (was {args.runs} each); {wall / args.runs:.1f} s a run")


if __name__ == "__main__":
    main()
