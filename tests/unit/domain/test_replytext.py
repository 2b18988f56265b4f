import pytest

from app.domain.decline import decline_phrase
from app.domain.replytext import split_reply


@pytest.mark.parametrize(
    ("text", "own", "quoted"),
    [
        (
            "Sounds good.\n\nOn Mon, 2 Mar 2026 at 15:04, Rep <rep@x.com> wrote:\n> Offer",
            "Sounds good.",
            True,
        ),
        ("Passt.\n\nAm 02.03.2026 um 15:04 schrieb Rep <rep@x.com>:\n> Angebot", "Passt.", True),
        (
            "D'accord.\n\nLe lun. 2 mars 2026 à 15:04, Rep <rep@x.com> a écrit :\n> Offre",
            "D'accord.",
            True,
        ),
        (
            "Vale.\n\nEl lun, 2 mar 2026 a las 15:04, Rep (<rep@x.com>) escribió:\n> Oferta",
            "Vale.",
            True,
        ),
        ("Yes.\n\n-----Original Message-----\nFrom: Rep\nSent: Monday\nOffer", "Yes.", True),
        (
            "Ok\n\nFrom: Rep <rep@x.com>\nSent: Monday, March 2\nTo: Anna\nSubject: Offer\n\nHi",
            "Ok",
            True,
        ),
        ("Yes\n\nSent from my iPhone", "Yes", False),
        ("Thanks\n--\nAnna Berg\nCEO", "Thanks", False),
        ("> Offer\n> line two\n\nAnswer below the quote.", "Answer below the quote.", True),
        ("On Mon, 2 Mar 2026, Rep <rep@x.com> wrote:\n> Offer\n\n", "", True),
        ("Here is what I wrote: nothing.", "Here is what I wrote: nothing.", False),
        (
            "---------- Forwarded message ---------\nFrom: X\n\nFYI",
            "---------- Forwarded message ---------\nFrom: X\n\nFYI",
            False,
        ),
    ],
)
def test_split_reply(text: str, own: str, quoted: bool) -> None:
    reply = split_reply(text)
    assert (reply.own, reply.quoted) == (own, quoted)


@pytest.mark.parametrize(
    ("text", "declined"),
    [
        ("We are not interested.", True),
        ("Not interested in your offer, thanks", True),
        ("No thanks.", True),
        ("Please take me off your list", True),
        ("We decided to go with a different vendor.", True),
        ("Kein Interesse, danke.", True),
        ("Bitte entfernen Sie mich aus dem Verteiler.", True),
        ("Merci, mais nous avons choisi un autre prestataire.", True),
        ("No me interesa, gracias.", True),
        ("Let me know if you are not interested", False),
        ("Are you not interested?", False),
        ("We are not interested in the basic tier but the premium one sounds good", False),
        ("No thanks needed!", False),
        ("Not right now, maybe in Q3.", False),
    ],
)
def test_decline(text: str, declined: bool) -> None:
    assert (decline_phrase(text) is not None) is declined
