"""Access tokens outlive the process: ``calbridge sync`` run as a new process each time (as a CLI user
runs it) asks Google's and Feishu's token endpoints once, until the token nears its expiry."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import yaml

from calbridge.testing.server import ThreadedServer
from calbridge_providers.feishu.emulator import FeishuEmulator
from calbridge_providers.google.emulator import GoogleEmulator

CLI = [sys.executable, "-m", "calbridge.cli.main"]
T0 = dt.datetime.now(dt.UTC).replace(microsecond=0)


def test_cli_runs_reuse_the_stored_access_tokens_until_they_expire(tmp_path: Path) -> None:
    google, feishu = GoogleEmulator(), FeishuEmulator()
    google.add_event("g", T0, T0 + dt.timedelta(hours=1))
    feishu.add_event("f", T0, T0 + dt.timedelta(hours=1))
    with ThreadedServer(google.make_app()) as g_srv, ThreadedServer(feishu.make_app) as f_srv:
        config = tmp_path / "calbridge.yaml"
        accounts = [google.account_config(name="g", base_url=g_srv.url, ca_file=None),
                    feishu.account_config(name="f", base_url=f_srv.url, ca_file=None)]  # fmt: skip
        config.write_text(yaml.safe_dump({"store": "sqlite:///mirror.db", "accounts": accounts}))

        def sync(now: dt.datetime) -> tuple[int, int]:
            env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE")}
            env["CALBRIDGE_NOW"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
            proc = subprocess.run([*CLI, "-c", str(config), "sync"], env=env, capture_output=True, text=True,
                                  timeout=120)  # fmt: skip
            assert proc.returncode == 0, proc.stdout + proc.stderr
            with google.state.lock, feishu.lock:
                issued = [*google.state.access_tokens, *feishu.tenant_tokens]
            assert not any(token in proc.stdout + proc.stderr for token in issued)
            return len(google.state.token_grants), len(feishu.requests("/tenant_access_token/"))

        assert sync(T0) == (1, 1)
        assert sync(T0 + dt.timedelta(minutes=10)) == (1, 1)  # a second process: the stored tokens
        # Google's token lives an hour, Feishu's two: each is fetched again once it is near its end.
        assert sync(T0 + dt.timedelta(minutes=58)) == (2, 1)
        assert sync(T0 + dt.timedelta(hours=1, minutes=40)) == (2, 2)
