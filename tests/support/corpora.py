"""The shared corpora of real mail: read where they lie (../shared/corpora), never copied here."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPORA = Path(__file__).resolve().parents[2].parent / "shared" / "corpora"

# The corpora are data written by others and sit beside the repository, not in it. A clone
# without them (a contributor's laptop) skips these tests; in CI (CI=true) their absence is a
# failure, so a broken checkout can never pass by silently running fewer tests.
MISSING = f"the shared corpora of real mail are not at {CORPORA} (they are never copied here)"


# The fixture `shared_corpora` (tests/conftest.py) does the skipping or failing.
needs_corpora = pytest.mark.usefixtures("shared_corpora")


def corpus_files() -> list[bytes]:
    """The start of every message file in the corpora (labels and notes left out)."""
    return [
        path.read_bytes()[:16_384]
        for path in sorted(CORPORA.rglob("*"))
        if path.is_file() and path.suffix not in {".json", ".md"} and path.name != "LICENSE"
    ]
