"""A parsed YAML document, or a config file, → :class:`Config`; every error names its place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ..errors import ConfigError
from . import _raw
from ._accounts import parse_accounts
from ._model import Config
from ._service import feed_from_file, service_from_file
from ._settings import settings_from_file
from ._store import parse_store
from ._vars import expand_document

if TYPE_CHECKING:
    from ..registry import Registry


def parse_config(
    data: object,
    *,
    base_dir: Path,
    env: Mapping[str, str] | None = None,
    registry: Registry | None = None,
    resolve_auth: bool = True,
    source: Path | None = None,
) -> Config:
    """Structure a parsed YAML document; relative paths are read against ``base_dir``. With
    ``resolve_auth=False`` the ``auth`` blocks are neither expanded nor checked (``events``/``status``
    read the store and need no secrets)."""
    env = os.environ if env is None else env
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping", where="$")
    if data.get("accounts") is None:  # `accounts:` with nothing under it: none, said below
        data = {**data, "accounts": []}
    for section in ("service", "feed"):  # `service:` with nothing under it: every default
        if section in data and data[section] is None:
            data = {k: v for k, v in data.items() if k != section}
    _raw.check_shapes(data)
    raw = _raw.structure(expand_document(data, env, auth=resolve_auth))
    settings = settings_from_file(
        past=raw.window.past, future=raw.window.future, history=raw.history, slack=raw.window.slack,
        limits=raw.limits,
    )  # fmt: skip
    service, feed = service_from_file(raw.service), feed_from_file(raw.feed)
    accounts = parse_accounts(raw.accounts, base_dir=base_dir, registry=registry, resolve_auth=resolve_auth)
    store = parse_store(raw.store, base_dir)
    return Config(
        store_path=store.path,
        store_url=store.url,
        store_options=store.options,
        settings=settings,
        service=service,
        feed=feed,
        accounts=accounts,
        source=source,
        base_dir=base_dir,
    )


def load_config(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    registry: Registry | None = None,
    resolve_auth: bool = True,
) -> Config:
    """Read and structure the YAML file at ``path`` (its folder is the config's ``base_dir``).

    ``registry`` defaults to the installed plugins (entry points); each account's ``auth`` is
    structured by its plugin unless ``resolve_auth`` is false.

    Raises:
        ConfigError: naming the place (``accounts[1].auth.client_secret: required``).
    """
    if registry is None:
        from ..registry import default_registry

        registry = default_registry
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no config file at {p} (pass -c FILE)", where=str(p)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", where=str(p)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(p)
        problem = str(getattr(exc, "problem", None) or "invalid YAML")
        line = text.splitlines()[mark.line] if mark is not None and mark.line < len(text.splitlines()) else ""
        if "${" in line:
            problem += ' (inside {...} a ${VAR} value must be quoted: "${VAR}")'
        raise ConfigError(problem, where=where) from None
    return parse_config(
        data,
        base_dir=p.resolve().parent,
        env=env,
        registry=registry,
        resolve_auth=resolve_auth,
        source=p,
    )
