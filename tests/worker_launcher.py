"""``asimapd`` with plaintext logins allowed, for tests only.

Production never lets LOGIN run without TLS (``Services.allow_plaintext_auth``
is False), so a plain connection reaches a worker only through a test.  This
launcher is ``asimap.cli.main`` with that one switch turned on, so the tests
can cover the path where the client's socket itself is passed to the worker.
"""

from __future__ import annotations

import dataclasses
import os
import sys

from asimap.cli import load_config
from asimap.imap import server
from asimap.ops.logging_setup import setup_logging


def main() -> int:
    config = load_config(sys.argv[1:], os.environ)
    setup_logging(config)
    services, _registry = server.build_services(config)
    services = dataclasses.replace(services, allow_plaintext_auth=True)
    return server.run(config, services=services)


if __name__ == "__main__":
    sys.exit(main())
