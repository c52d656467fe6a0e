"""A throwaway certificate authority for HTTPS emulators (trustme, a core dependency)."""

from __future__ import annotations

import ssl
from pathlib import Path

import attrs

from ..errors import MissingDependency


@attrs.frozen(kw_only=True)
class TestCA:
    """A CA written to ``ca_file`` plus a server context for ``localhost``/``127.0.0.1``."""

    __test__ = False  # not a pytest test class, despite its name

    ca_file: Path
    server_context: ssl.SSLContext


def make_test_ca(directory: Path) -> TestCA:
    """Issue a CA and a ``localhost`` certificate; writes the CA to ``directory/calbridge-test-ca.pem``.

    Raises:
        MissingDependency: trustme is not installed (a broken install: it is a core dependency).
    """
    try:
        import trustme
    except ImportError:
        raise MissingDependency("HTTPS emulators", module="trustme") from None
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "calbridge-test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return TestCA(ca_file=path, server_context=ctx)
