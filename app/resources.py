"""Where the files shipped beside the code are: templates/ (pages and draft questions)."""

from __future__ import annotations

from pathlib import Path

import app as package


def templates_dir() -> Path:
    """templates/ beside the package (a checkout), else under the working directory (the
    Docker image copies templates/ next to where it runs)."""
    beside = Path(package.__file__).resolve().parents[1] / "templates"
    return beside if beside.is_dir() else Path.cwd() / "templates"
