from datetime import UTC, date, datetime

import pytest

from app.domain.returndate import find_return_date

SENT = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I am out of the office until 16/03/2026.", date(2026, 3, 16)),
        ("Back in the office on Mon. 16 March.", date(2026, 3, 16)),
        ("Away until March 12", date(2026, 3, 12)),
        ("I'll be back on Monday.", date(2026, 3, 9)),
        ("Out from 3 to 14 March, limited access to e-mail.", date(2026, 3, 14)),
        ("returning 2026-04-01", date(2026, 4, 1)),
        ("until 12/20/2026", None),  # outside the 90-day window
        ("I was away until 27 February 2026.", None),  # in the past
        ("Ich bin bis zum 14.03. nicht im Büro.", date(2026, 3, 14)),
        ("Ab dem 16. März 2026 bin ich wieder erreichbar.", date(2026, 3, 16)),
        ("Ich bin vom 3. bis 13. März im Urlaub.", date(2026, 3, 13)),
        ("Je serai de retour le lundi 9 mars.", date(2026, 3, 9)),
        ("Absente jusqu'au 20/03/2026 inclus.", date(2026, 3, 20)),
        ("Estoy fuera de la oficina hasta el 20 de marzo.", date(2026, 3, 20)),
        ("Regreso el lunes 9 de marzo de 2026.", date(2026, 3, 9)),
        ("Out of office until 10.30 am", None),  # a time, not a date
        ("Thanks for your message.", None),
    ],
)
def test_return_dates(text: str, expected: date | None) -> None:
    found = find_return_date([text], SENT)
    assert (found.day if found else None) == expected


def test_year_less_date_after_new_year() -> None:
    sent = datetime(2026, 12, 22, tzinfo=UTC)
    found = find_return_date(["Back on 5 January."], sent)
    assert found is not None and found.day == date(2027, 1, 5)


def test_subject_first_and_phrase_in_reason() -> None:
    found = find_return_date(["Away until March 12", "back on 20 March"], SENT)
    assert found is not None and found.day == date(2026, 3, 12)
    assert found.phrase == "until March 12"


def test_no_message_date_no_return_date() -> None:
    assert find_return_date(["until 16 March"], None) is None
