"""``python -m devservers``: see devservers.cli."""

from __future__ import annotations

import sys

from devservers.cli import main

sys.exit(main())
