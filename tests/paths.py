"""Where the checkout is, and the environment a test's child process runs in."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    """``os.environ`` with this checkout first on ``PYTHONPATH``: a child process (a script in a temp dir, a
    command) imports this checkout, whatever is installed."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
