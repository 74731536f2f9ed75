"""``python -m coach``: see coach.cli."""

import sys

from .cli import main

sys.exit(main())
