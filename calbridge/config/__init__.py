"""The YAML config (see the contract) → frozen attrs values, with errors that name the place.

Loading has two phases: cattrs structures the core keys (unknown keys are errors, so typos surface),
then each account's plugin structures its own ``auth`` mapping. ``${VAR}`` is read from the
environment (``$$`` is a literal ``$``); relative paths are relative to the config file's folder,
:attr:`Config.base_dir`. Library users can build :class:`Config` directly in code; its ``base_dir``
is then the working directory unless given.

One module per job: ``_model`` (:class:`Config`), ``_settings`` (window and history),
``_service`` (the ``service`` and ``feed`` sections), ``_accounts`` (the ``accounts`` entries),
``_auth`` (plugins' ``auth``: the key check they run and the one place ``parse_auth`` is called),
``_raw`` (the file's shape for cattrs, and its errors as places), ``_store`` (the ``store``
value), ``_vars`` (``${VAR}``),
``_load`` (a document or a file → :class:`Config`).
"""

from __future__ import annotations

from ._accounts import AccountConfig
from ._auth import auth_fields, structure_auth
from ._load import load_config, parse_config
from ._model import Config
from ._service import FeedSettings, Listen, ServiceSettings, parse_listen
from ._settings import Settings, parse_duration
from ._store import StoreOptions

__all__ = [
    "AccountConfig",
    "Config",
    "FeedSettings",
    "Listen",
    "ServiceSettings",
    "Settings",
    "StoreOptions",
    "auth_fields",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_listen",
    "structure_auth",
]
