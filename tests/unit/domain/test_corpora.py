"""The classifier against the shared corpora of real mail: the bars of bench/classify_eval.py.

The corpora live beside the repository (../shared/corpora) and are never copied into it; the
test skips when they are absent.
"""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.corpora import CORPORA, needs_corpora

ROOT = Path(__file__).resolve().parents[3]
pytestmark = needs_corpora


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "classify_eval", ROOT / "bench" / "classify_eval.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("classify_eval", module)
    spec.loader.exec_module(module)
    return module


def test_corpora_clear_the_bars(bench: ModuleType) -> None:
    tally = bench.Tally()
    bench.evaluate_corpora(CORPORA, tally)
    bench.evaluate_cases(tally)
    for cls in ("auto_reply", "bounce"):
        assert tally.precision(cls) >= 0.98, (cls, sorted(tally.pairs.items()))
        assert tally.recall(cls) >= 0.95, (cls, sorted(tally.pairs.items()))
    assert tally.precision("bulk") >= 0.98, sorted(tally.pairs.items())
    assert tally.recall("bulk") >= 0.90, sorted(tally.pairs.items())
    assert tally.auto_or_bounce_as_reply == []
    assert tally.bulk_as_reply == []
    assert tally.human_as_other == []
    assert tally.delay_as_bounce == []
    # Every delay notice is a soft bounce, every receipt a receipt.
    assert set(tally.delays) == {"soft"}, tally.delays
    assert set(tally.receipts) == {"receipt"}, tally.receipts


def test_delay_notes_are_read_from_the_readme(bench: ModuleType) -> None:
    flagged = bench.delay_flagged(CORPORA)
    assert "mail-deliverystatus-bounceparser/warning-8.msg" in flagged
    assert "bounce-email-py/bounces/tt_bounce_12_soft.txt" in flagged
    assert "flanker/bounce/delayed-broken.eml" not in flagged  # a failed 4.2.2, not a delay


def test_spam_notes_are_read_from_the_readme(bench: ModuleType) -> None:
    spam = bench.spam_flagged(CORPORA)
    assert "mail-gem/error_emails/content_transfer_encoding_spam.eml" in spam
    assert "mail-gem/error_emails/cant_parse_from.eml" not in spam  # a newsletter
    assert not any("spam-rejection" in rel for rel in spam)  # bounces noted "rejected as spam"


def test_every_corpus_file_parses_without_raising(bench: ModuleType) -> None:
    for path in sorted(CORPORA.rglob("*")):
        if path.is_file() and path.suffix not in {".json", ".md"} and path.name != "LICENSE":
            bench.read_message(path.read_bytes())
