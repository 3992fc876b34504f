"""Entry point of ``python -m qcore`` (see :mod:`qcore.cli`)."""

import sys

from .cli import main

sys.exit(main())
