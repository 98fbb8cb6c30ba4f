"""``python -m bench.suite``: every workload, asimap and Dovecot, one run."""

import sys

from bench.suite.cli import main

sys.exit(main())
