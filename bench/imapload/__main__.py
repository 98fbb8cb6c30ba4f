"""``python -m bench.imapload``."""

import sys

from bench.imapload.cli import main

sys.exit(main())
