"""``python3 -m taskmesh_local``."""

from __future__ import annotations

import sys

from taskmesh_local.cli import main

sys.exit(main())
