"""Hand-written, real-looking messages with the verdict each must get.

Shared by the table tests (test_classify_cases.py) and bench/classify_eval.py. The rep is
rep@seller.com; every message answers the rep's <offer-1@seller.com> of Mon 2 Mar 2026.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from hashlib import sha256

from app.domain.model import Identity, MessageKind, Subkind

REP = Identity.from_addresses(["rep@seller.com", "rep.alias@seller.com"])
SENT = "Mon, 02 Mar 2026 15:04:05 +0100"
ORIGINAL = (
    "Hi Anna,\n\nhere is the offer for the 40 seats we discussed.\n"
    "Could we talk on Thursday?\n\nBest,\nRep"
)


@dataclass(frozen=True, kw_only=True)
class MailCase:
    name: str
    raw: bytes
    kind: MessageKind
    subkind: Subkind | None = None
    human: bool = False  # written by a person: must never be auto_reply or bounce
    return_date: date | None = None
    bounce_recipient: str | None = None
    bounce_hard: bool | None = None
    decline: bool = False
    replacement_contact: str | None = None
    returned_message_id: str | None = None
    reason_part: str = ""
    tags: tuple[str, ...] = field(default=())


def mail(
    body: str = "",
    *,
    sender: str = "Anna Berg <anna@buyer.org>",
    to: str = "Rep <rep@seller.com>",
    subject: str = "Re: Offer for 40 seats",
    headers: str = "",
    content_type: str = "text/plain; charset=utf-8",
    date: str = SENT,
    threaded: bool = True,
) -> bytes:
    thread = (
        "In-Reply-To: <offer-1@seller.com>\nReferences: <offer-1@seller.com>\n" if threaded else ""
    )
    digest = sha256((body + subject + headers).encode()).hexdigest()[:12]
    head = (
        f"From: {sender}\nTo: {to}\nSubject: {subject}\nDate: {date}\n"
        f"Message-ID: <m-{digest}@buyer.org>\n"
        f"{thread}{headers}MIME-Version: 1.0\nContent-Type: {content_type}\n\n"
    )
    return (head + body).replace("\n", "\r\n").encode()


def quoted(text: str = ORIGINAL) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))


GMAIL_HEADER = "On Mon, Mar 2, 2026 at 3:04 PM Rep <rep@seller.com> wrote:"
OUTLOOK_BLOCK = (
    "________________________________\n"
    "From: Rep <rep@seller.com>\nSent: Monday, March 2, 2026 3:04 PM\n"
    "To: Anna Berg <anna@buyer.org>\nSubject: Offer for 40 seats\n\n"
)


def _dsn(
    action: str,
    status: str,
    recipient: str,
    diagnostic: str,
    human: str,
    *,
    extra: tuple[str, str, str, str] | None = None,
) -> bytes:
    """A delivery-status report for one recipient (`extra`: a second one's action, status,
    address and diagnostic). An empty `action` leaves the Action field out."""
    boundary = "dsn-boundary-1"
    blocks = [(action, status, recipient, diagnostic), *([extra] if extra else [])]
    per_recipient = "".join(
        f"Final-Recipient: rfc822; {r}\nOriginal-Recipient: rfc822;{r}\n"
        + (f"Action: {a}\n" if a else "")
        + f"Status: {st}\nRemote-MTA: dns; mx2.buyer.org\nDiagnostic-Code: smtp; {d}\n\n"
        for a, st, r, d in blocks
    )
    body = (
        f"--{boundary}\nContent-Type: text/plain; charset=us-ascii\n\n{human}\n\n"
        f"--{boundary}\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.buyer.org\nArrival-Date: Mon, 2 Mar 2026 15:04:07 +0100\n\n"
        f"{per_recipient}"
        f"--{boundary}\nContent-Type: text/rfc822-headers\n\n"
        "From: Rep <rep@seller.com>\nTo: Anna Berg <anna@buyer.org>\n"
        "Subject: Offer for 40 seats\nMessage-ID: <offer-1@seller.com>\n\n"
        f"--{boundary}--\n"
    )
    subjects = {
        "failed": "Undelivered Mail Returned to Sender",
        "delayed": "Delayed Mail (still being retried)",
    }
    return mail(
        body,
        sender="Mail Delivery System <MAILER-DAEMON@mx.buyer.org>",
        subject=subjects.get(action, "Delivery Status Notification"),
        headers="Auto-Submitted: auto-replied\n",
        content_type=f'multipart/report; report-type=delivery-status; boundary="{boundary}"',
        threaded=False,
    )


CASES: tuple[MailCase, ...] = (
    # --- the rep's own mail -------------------------------------------------------------
    MailCase(
        name="rep's own follow-up in Sent",
        raw=mail(
            f"Any news?\n\n{GMAIL_HEADER}\n{quoted()}",
            sender="Rep <rep@seller.com>",
            to="Anna Berg <anna@buyer.org>",
        ),
        kind=MessageKind.OUTBOUND,
        reason_part="one of your addresses",
    ),
    MailCase(
        name="rep's alias with plus-addressing, auto-reply-looking subject",
        raw=mail(
            "Back tomorrow.",
            sender="REP.Alias+crm@Seller.com",
            to="anna@buyer.org",
            subject="Automatic reply: Offer",
        ),
        kind=MessageKind.OUTBOUND,
    ),
    # --- human replies ------------------------------------------------------------------
    MailCase(
        name="Gmail reply with own text above the quote",
        raw=mail(f"Thursday works, 10:00?\n\nAnna\n\n{GMAIL_HEADER}\n{quoted()}"),
        kind=MessageKind.REPLY,
        human=True,
    ),
    MailCase(
        name="Outlook reply above the original",
        raw=mail(f"Sounds good, send the contract.\n\n{OUTLOOK_BLOCK}{ORIGINAL}"),
        kind=MessageKind.REPLY,
        human=True,
    ),
    MailCase(
        name="one-word answer with iPhone signature",
        raw=mail(f"Yes.\n\nSent from my iPhone\n\n{GMAIL_HEADER}\n{quoted()}"),
        kind=MessageKind.REPLY,
        human=True,
    ),
    MailCase(
        name="bottom-posted answer under the quote",
        raw=mail(f"{GMAIL_HEADER}\n{quoted()}\n\nThursday is fine for me."),
        kind=MessageKind.REPLY,
        human=True,
    ),
    MailCase(
        name="German reply (Am … schrieb …)",
        raw=mail(
            "Passt, Donnerstag 10 Uhr.\n\nAm Mo., 2. März 2026 um 15:04 Uhr schrieb Rep "
            f"<rep@seller.com>:\n{quoted()}"
        ),
        kind=MessageKind.REPLY,
        human=True,
    ),
    MailCase(
        name="X-Auto-Response-Suppress alone is ordinary Outlook mail",
        raw=mail(
            f"Let's talk Thursday.\n\n{OUTLOOK_BLOCK}{ORIGINAL}",
            headers="X-Auto-Response-Suppress: All\nX-MS-Has-Attach: \n",
        ),
        kind=MessageKind.REPLY,
        human=True,
    ),
    MailCase(
        name="Auto-Submitted: no is a person",
        raw=mail("Thanks, looks good.", headers="Auto-Submitted: no\n"),
        kind=MessageKind.REPLY,
        human=True,
    ),
    MailCase(
        name="a person who is away but answers anyway (quotes the offer)",
        raw=mail(
            "I'm out of the office until Friday, but yes, please send the contract.\n\n"
            f"{GMAIL_HEADER}\n{quoted()}"
        ),
        kind=MessageKind.REPLY,
        human=True,
    ),
    MailCase(
        name="reply relayed by the prospect's Google Group",
        raw=mail(
            "We would like to proceed.",
            sender="Anna Berg <anna@buyer.org>",
            to="sales@buyer.org",
            headers="List-Id: <sales.buyer.org>\nPrecedence: list\n"
            "List-Unsubscribe: <mailto:sales+unsubscribe@buyer.org>\n",
        ),
        kind=MessageKind.REPLY,
        subkind=Subkind.LIST_RELAYED,
        human=True,
    ),
    MailCase(
        name="HTML-only Gmail reply",
        raw=mail(
            '<div dir="ltr">Great, Thursday it is.</div><br><div class="gmail_quote">'
            f'<div class="gmail_attr">{GMAIL_HEADER}</div><blockquote class="gmail_quote">'
            "Hi Anna,<br>here is the offer.</blockquote></div>",
            content_type="text/html; charset=utf-8",
        ),
        kind=MessageKind.REPLY,
        human=True,
    ),
    MailCase(
        name="accepted calendar invitation",
        raw=mail(
            "--cal\nContent-Type: text/plain; charset=utf-8\n\nAnna Berg has accepted.\n\n"
            '--cal\nContent-Type: text/calendar; charset=utf-8; method="REPLY"\n\n'
            "BEGIN:VCALENDAR\nMETHOD:REPLY\nBEGIN:VEVENT\n"
            "ATTENDEE;PARTSTAT=ACCEPTED;CN=Anna Berg:mailto:anna@buyer.org\n"
            "END:VEVENT\nEND:VCALENDAR\n--cal--\n",
            subject="Accepted: Offer call @ Thu 5 Mar 2026 10:00",
            content_type='multipart/alternative; boundary="cal"',
        ),
        kind=MessageKind.REPLY,
        subkind=Subkind.CALENDAR_REPLY,
        human=True,
        reason_part="METHOD:REPLY",
    ),
    # --- quote-only "replies" -----------------------------------------------------------
    MailCase(
        name="quote-only reply (plain text)",
        raw=mail(f"\n\n{GMAIL_HEADER}\n{quoted()}"),
        kind=MessageKind.BULK,
        subkind=Subkind.EMPTY_REPLY,
        reason_part="empty reply",
    ),
    MailCase(
        name="quote-only Outlook reply with only a signature",
        raw=mail(f"\n--\nAnna Berg | Buyer Org\n\n{OUTLOOK_BLOCK}{ORIGINAL}"),
        kind=MessageKind.BULK,
        subkind=Subkind.EMPTY_REPLY,
    ),
    MailCase(
        name="quote-only HTML reply",
        raw=mail(
            '<div><br></div><div class="gmail_quote">'
            f"{GMAIL_HEADER}<blockquote>Hi Anna, here is the offer.</blockquote></div>",
            content_type="text/html; charset=utf-8",
        ),
        kind=MessageKind.BULK,
        subkind=Subkind.EMPTY_REPLY,
    ),
    # --- declines -----------------------------------------------------------------------
    MailCase(
        name="decline (en, not interested)",
        raw=mail(f"Thanks, but we're not interested.\n\n{GMAIL_HEADER}\n{quoted()}"),
        kind=MessageKind.REPLY,
        human=True,
        decline=True,
        reason_part="not interested",
    ),
    MailCase(
        name="decline (en, another vendor)",
        raw=mail(f"We went with another vendor this year.\n\n{OUTLOOK_BLOCK}{ORIGINAL}"),
        kind=MessageKind.REPLY,
        human=True,
        decline=True,
    ),
    MailCase(
        name="decline (en, remove me)",
        raw=mail("Please remove me from your mailing list."),
        kind=MessageKind.REPLY,
        human=True,
        decline=True,
    ),
    MailCase(
        name="decline (de)",
        raw=mail(
            "Danke, wir haben uns für einen anderen Anbieter entschieden.\n\n"
            f"{OUTLOOK_BLOCK}{ORIGINAL}"
        ),
        kind=MessageKind.REPLY,
        human=True,
        decline=True,
    ),
    MailCase(
        name="decline (fr)",
        raw=mail("Bonjour, nous ne sommes pas intéressés. Cordialement"),
        kind=MessageKind.REPLY,
        human=True,
        decline=True,
    ),
    MailCase(
        name="decline (es)",
        raw=mail("Hola, no estamos interesados por ahora. Saludos"),
        kind=MessageKind.REPLY,
        human=True,
        decline=True,
    ),
    MailCase(
        name="not a decline: a condition quoted back",
        raw=mail(
            f"Let me check with my boss and tell you if we are not interested.\n\n"
            f"{GMAIL_HEADER}\n{quoted()}"
        ),
        kind=MessageKind.REPLY,
        human=True,
        decline=False,
    ),
    MailCase(
        name="not a decline: the phrase is only in the quoted offer",
        raw=mail(f"Sure, Thursday.\n\n{GMAIL_HEADER}\n{quoted('Not interested? Just say so.')}"),
        kind=MessageKind.REPLY,
        human=True,
        decline=False,
    ),
    # --- auto-replies -------------------------------------------------------------------
    MailCase(
        name="Microsoft 365 out-of-office: no Auto-Submitted",
        raw=mail(
            "I am out of the office until 16/03/2026 with limited access to e-mail.",
            subject="Automatic reply: Offer for 40 seats",
            headers="X-Auto-Response-Suppress: All\n"
            "X-MS-Exchange-Inbox-Rules-Loop: anna@buyer.org\nThread-Topic: Offer for 40 seats\n",
        ),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.OUT_OF_OFFICE,
        return_date=date(2026, 3, 16),
        reason_part="X-MS-Exchange-Inbox-Rules-Loop",
    ),
    MailCase(
        name="RFC 3834 vacation, return date in the subject",
        raw=mail(
            "I'm travelling with limited access to e-mail.",
            subject="Away until March 12",
            headers="Auto-Submitted: auto-replied\n",
        ),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.OUT_OF_OFFICE,
        return_date=date(2026, 3, 12),
        reason_part="Auto-Submitted",
    ),
    MailCase(
        name="German Abwesenheitsnotiz",
        raw=mail(
            "Vielen Dank für Ihre Nachricht. Ich bin bis einschließlich 13.03.2026 nicht im "
            "Büro und ab dem 16.03. wieder erreichbar.",
            subject="Abwesenheitsnotiz: Offer for 40 seats",
            headers="X-Auto-Response-Suppress: All\n"
            "X-MS-Exchange-Inbox-Rules-Loop: anna@buyer.org\n",
        ),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.OUT_OF_OFFICE,
        return_date=date(2026, 3, 13),
    ),
    MailCase(
        name="French réponse automatique",
        raw=mail(
            "Bonjour, je suis absente jusqu'au lundi 9 mars inclus. Cordialement",
            subject="Réponse automatique : Offer for 40 seats",
        ),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.OUT_OF_OFFICE,
        return_date=date(2026, 3, 9),
    ),
    MailCase(
        name="Spanish respuesta automática",
        raw=mail(
            "Gracias por su mensaje. Estoy fuera de la oficina hasta el 20 de marzo.",
            subject="Respuesta automática: Offer for 40 seats",
        ),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.OUT_OF_OFFICE,
        return_date=date(2026, 3, 20),
    ),
    MailCase(
        name="out-of-office text only (no header, no auto subject, quotes nothing)",
        raw=mail("Thank you for your email. I am out of the office until Monday, March 9."),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.OUT_OF_OFFICE,
        return_date=date(2026, 3, 9),
        reason_part="the text",
    ),
    MailCase(
        name="X-Autoreply header, no date written",
        raw=mail("Your message has been received.", headers="X-Autoreply: yes\n"),
        kind=MessageKind.AUTO_REPLY,
        reason_part="X-Autoreply",
    ),
    MailCase(
        name="Precedence: auto_reply",
        raw=mail("Thanks for reaching out!", headers="Precedence: auto_reply\n"),
        kind=MessageKind.AUTO_REPLY,
    ),
    MailCase(
        name="past return date is ignored",
        raw=mail(
            "I was out of the office until 27 February 2026.",
            subject="Automatic reply: Offer for 40 seats",
        ),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.OUT_OF_OFFICE,
        return_date=None,
    ),
    MailCase(
        name="left the company, replacement named",
        raw=mail(
            "Anna Berg is no longer with Buyer Org. For all matters, please contact "
            "Jonas Weber (jonas.weber@buyer.org).",
            subject="Automatic reply: Offer for 40 seats",
            headers="X-MS-Exchange-Inbox-Rules-Loop: anna@buyer.org\n",
        ),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.LEFT_COMPANY,
        replacement_contact="Jonas Weber <jonas.weber@buyer.org>",
    ),
    MailCase(
        name="left the company (de), Auto-Submitted",
        raw=mail(
            "Frau Berg ist nicht mehr im Unternehmen tätig. Bitte wenden Sie sich an "
            "vertrieb@buyer.org.",
            subject="Offer for 40 seats",
            headers="Auto-Submitted: auto-generated\n",
        ),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.LEFT_COMPANY,
        replacement_contact="vertrieb@buyer.org",
    ),
    MailCase(
        name="read receipt (MDN) is not a reply",
        raw=mail(
            "--mdn\nContent-Type: text/plain\n\nYour message was read on 2 Mar 2026 15:30.\n\n"
            "--mdn\nContent-Type: message/disposition-notification\n\n"
            "Reporting-UA: buyer.org; Microsoft Outlook\n"
            "Final-Recipient: rfc822;anna@buyer.org\nOriginal-Message-ID: <offer-1@seller.com>\n"
            "Disposition: manual-action/MDN-sent-manually; displayed\n\n--mdn--\n",
            subject="Read: Offer for 40 seats",
            content_type='multipart/report; report-type=disposition-notification; boundary="mdn"',
        ),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.READ_RECEIPT,
        reason_part="disposition-notification",
    ),
    # --- delivery reports ---------------------------------------------------------------
    MailCase(
        name="hard bounce: RFC 3464 DSN, 5.1.1",
        raw=_dsn(
            "failed",
            "5.1.1",
            "anna@buyer.org",
            "550 5.1.1 <anna@buyer.org>: Recipient address rejected: User unknown",
            "This is the mail system at host mx.buyer.org.\n\nI'm sorry to have to inform you "
            "that your message could not be delivered to one or more recipients.",
        ),
        kind=MessageKind.BOUNCE,
        bounce_recipient="anna@buyer.org",
        bounce_hard=True,
        returned_message_id="<offer-1@seller.com>",
        reason_part="Action failed",
    ),
    MailCase(
        name="soft bounce: mailbox full, 4.2.2 failed",
        raw=_dsn(
            "failed",
            "4.2.2",
            "anna@buyer.org",
            "452 4.2.2 Mailbox full",
            "Delivery to the following recipient failed: anna@buyer.org",
        ),
        kind=MessageKind.BOUNCE,
        bounce_recipient="anna@buyer.org",
        bounce_hard=False,
    ),
    MailCase(
        name="delay notice is not a bounce",
        raw=_dsn(
            "delayed",
            "4.4.7",
            "anna@buyer.org",
            "421 4.4.7 Try again later",
            "THIS IS A WARNING ONLY. YOU DO NOT NEED TO RESEND YOUR MESSAGE.",
        ),
        kind=MessageKind.BOUNCE,
        subkind=Subkind.DELAY_NOTICE,
        bounce_recipient="anna@buyer.org",
        bounce_hard=False,
        reason_part="delayed, still being retried",
    ),
    MailCase(
        name="delivery-status report, Action relayed, Status 2.1.5: a receipt",
        raw=_dsn(
            "relayed",
            "2.1.5",
            "anna@buyer.org",
            "250 2.1.5 Ok",
            "Your message was relayed to a server that does not return delivery reports.",
        ),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.DELIVERY_RECEIPT,
        reason_part="a receipt",
    ),
    MailCase(
        name="delivery-status report without Action, Status 2.0.0: a receipt",
        raw=_dsn(
            "",
            "2.0.0",
            "anna@buyer.org",
            "250 2.0.0 Message accepted for delivery",
            "This is the mail system at host mx.seller.com. Your message was delivered.",
        ),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.DELIVERY_RECEIPT,
    ),
    MailCase(
        name="delivery-status report: one recipient delivered, one failed is a bounce",
        raw=_dsn(
            "delivered",
            "2.0.0",
            "rep.colleague@buyer.org",
            "250 ok",
            "Delivery to the following recipient failed permanently: anna@buyer.org",
            extra=("failed", "5.1.1", "anna@buyer.org", "550 5.1.1 User unknown"),
        ),
        kind=MessageKind.BOUNCE,
        bounce_recipient="anna@buyer.org",
        bounce_hard=True,
    ),
    MailCase(
        name="qmail bounce without DSN, original inline",
        raw=mail(
            "Hi. This is the qmail-send program at mx.buyer.org.\nI'm afraid I wasn't able "
            "to deliver your message to the following addresses.\n\n<anna@buyer.org>:\n"
            "Sorry, no mailbox here by that name. (#5.1.1)\n\n--- Below this line is a copy "
            "of the message.\n\nMessage-ID: <offer-1@seller.com>\nSubject: Offer for 40 seats\n",
            sender="MAILER-DAEMON@mx.buyer.org",
            subject="failure notice",
            threaded=False,
        ),
        kind=MessageKind.BOUNCE,
        bounce_recipient="anna@buyer.org",
        bounce_hard=True,
        returned_message_id="<offer-1@seller.com>",
    ),
    MailCase(
        name="Exim bounce: X-Failed-Recipients",
        raw=mail(
            "This message was created automatically by mail delivery software.\n\n"
            "A message that you sent could not be delivered to one or more of its recipients.",
            sender="Mail Delivery System <Mailer-Daemon@mx.buyer.org>",
            subject="Mail delivery failed: returning message to sender",
            headers="X-Failed-Recipients: anna@buyer.org\nAuto-Submitted: auto-replied\n",
            threaded=False,
        ),
        kind=MessageKind.BOUNCE,
        bounce_recipient="anna@buyer.org",
        reason_part="X-Failed-Recipients",
    ),
    MailCase(
        name="Exchange NDR from a postmaster, subject Undeliverable",
        raw=mail(
            "Your message to anna@buyer.org couldn't be delivered.\nanna wasn't found at "
            "buyer.org.\nRemote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound'",
            sender="postmaster@buyer.onmicrosoft.com",
            subject="Undeliverable: Offer for 40 seats",
            threaded=False,
        ),
        kind=MessageKind.BOUNCE,
        bounce_recipient="anna@buyer.org",
        bounce_hard=True,
    ),
    # --- bulk and internal --------------------------------------------------------------
    MailCase(
        name="newsletter with List-Unsubscribe",
        raw=mail(
            "Our spring sale starts today!",
            sender="news@buyer.org",
            subject="Spring sale",
            headers="List-Unsubscribe: <https://buyer.org/u/1>\nFeedback-ID: 1:2:esp\n",
            threaded=False,
        ),
        kind=MessageKind.BULK,
    ),
    MailCase(
        name="no-reply notification",
        raw=mail(
            "Your invoice is ready.",
            sender="no-reply@billing.buyer.org",
            subject="Invoice",
            threaded=False,
        ),
        kind=MessageKind.BULK,
    ),
    # --- bulk without list headers: weak signals weighed (issue 17) ------------------------
    MailCase(
        name="old-style newsletter: news@ sender and an unsubscribe footer",
        raw=mail(
            "Acme Tools - March news\n\nOur new torque wrench line is here, 20% off until "
            "Friday.\n\nTo unsubscribe from this newsletter, click here: "
            "https://acme-tools.example/u?id=77",
            sender="Acme Tools <news@acme-tools.example>",
            subject="March news: new torque wrenches",
            threaded=False,
        ),
        kind=MessageKind.BULK,
        reason_part="sender news@",
    ),
    MailCase(
        name="card-issuer news: Return-Path on an ESP's domain and a 'you are receiving' footer",
        raw=mail(
            "Dear cardmember,\n\nyour new statement design is live.\n\nYou are receiving "
            "this e-mail because you hold a Northbank card.",
            sender="Northbank Card Services <cardservices@northbank.example>",
            subject="Your statement has a new look",
            headers="Return-Path: <bounce-mc.us4_1234.567-99881@mail78.mcsv.net>\n",
            threaded=False,
        ),
        kind=MessageKind.BULK,
        reason_part="bounce domain mail78.mcsv.net",
    ),
    MailCase(
        name="survey sent through Mailgun with an unsubscribe link",
        raw=mail(
            "How did we do? Rate your last delivery: https://survey.parcelco.example/r/1\n\n"
            "Unsubscribe: https://survey.parcelco.example/u/1",
            sender="ParcelCo <feedback@parcelco.example>",
            subject="How was your delivery?",
            headers="X-Mailgun-Sid: WyI0ZmIzNSIsICJyZXBAc2VsbGVyLmNvbSIsICI5ZjM4Il0=\n",
            threaded=False,
        ),
        kind=MessageKind.BULK,
        reason_part="ESP header",
    ),
    MailCase(
        name="campaign through Amazon SES: X-SES-Outgoing and X-Campaign, headers only",
        raw=mail(
            "Join our webinar on Thursday.",
            sender="Product Team <team@saasly.example>",
            subject="Webinar: what's new in Q2",
            headers="X-SES-Outgoing: 2026.03.02-54.240.8.1\nX-Campaign: q2-webinar-emea\n",
            threaded=False,
        ),
        kind=MessageKind.BULK,
    ),
    MailCase(
        name="SendGrid: X-SG-EID and a bounce Return-Path on sendgrid.net",
        raw=mail(
            "Your weekly digest of new listings.",
            sender="Listings <hello@homefinder.example>",
            subject="12 new listings near you",
            headers="X-SG-EID: u001.Qh8kL2\nReturn-Path: <bounces+1234-ab12-rep=seller.org@"
            "em123.sendgrid.net>\n",
            threaded=False,
        ),
        kind=MessageKind.BULK,
    ),
    MailCase(
        name="mass mailer's X-Mailer (SendBlaster) from info@",
        raw=mail(
            "Spring offers for our business customers.",
            sender="Office Supply <info@officesupply.example>",
            subject="Spring offers",
            headers="X-Mailer: SendBlaster 4.4.2\n",
            threaded=False,
        ),
        kind=MessageKind.BULK,
        reason_part="mass mailer",
    ),
    MailCase(
        name="Return-Path encodes the rep's own address (VERP)",
        raw=mail(
            "This month in logistics: three stories.",
            sender="Logistics Weekly <editor@logweekly.example>",
            subject="This month in logistics",
            headers="Return-Path: <lw-bounce+rep=seller.com@lists.logweekly.example>\n",
            threaded=False,
        ),
        kind=MessageKind.BULK,
        reason_part="VERP",
    ),
    MailCase(
        name="German newsletter: newsletter@ and 'abmelden'",
        raw=mail(
            "Liebe Kundin, lieber Kunde,\n\nunsere Frühjahrsaktion beginnt heute.\n\n"
            "Newsletter abmelden: https://gartenwelt.example/abmelden",
            sender="Gartenwelt <newsletter@gartenwelt.example>",
            subject="Frühjahrsaktion",
            threaded=False,
        ),
        kind=MessageKind.BULK,
    ),
    MailCase(
        name="mailer@ with 'view in browser' and 'manage your preferences'",
        raw=mail(
            "View this email in your browser\n\nThe conference programme is out.\n\n"
            "Manage your preferences | Privacy",
            sender="EventCo <mailer@eventco.example>",
            subject="The programme is out",
            threaded=False,
        ),
        kind=MessageKind.BULK,
    ),
    MailCase(
        name="Mailchimp: X-MC-User and an 'update your preferences' footer",
        raw=mail(
            "Five recipes for spring.\n\nWhy did I get this? You subscribed to our list.\n"
            "Update your preferences or unsubscribe from this list.",
            sender="Cook Club <hi@cookclub.example>",
            subject="Five recipes for spring",
            headers="X-MC-User: 8d2c1f0e9a7b6c5d4e3f2a1b0\n",
            threaded=False,
        ),
        kind=MessageKind.BULK,
    ),
    MailCase(
        name="a person's reply that quotes a newsletter stays a reply",
        raw=mail(
            "Saw this in their newsletter - relevant for our rollout?\n\n"
            + quoted(
                "Acme Tools - March news\nTo unsubscribe from this newsletter, click here: "
                "https://acme-tools.example/u\nYou are receiving this e-mail because you "
                "subscribed."
            ),
        ),
        kind=MessageKind.REPLY,
        human=True,
    ),
    MailCase(
        name="a person writing from news@ (a newsroom) with no other signal is a reply",
        raw=mail("Sounds good, let's talk Thursday at 10.", sender="Desk <news@buyer.org>"),
        kind=MessageKind.REPLY,
        human=True,
    ),
    MailCase(
        name="a reply sent through the buyer's own SES, one weak signal, is a reply",
        raw=mail(
            "Thanks, the numbers work for us. Can you send the contract?",
            headers="X-SES-Outgoing: 2026.03.02-54.240.8.9\n",
        ),
        kind=MessageKind.REPLY,
        human=True,
    ),
    MailCase(
        name="a threaded reply whose own text has an unsubscribe link and a footer is a reply",
        raw=mail(
            "Yes, please go ahead. PS: our marketing list is at https://buyer.org/news - "
            "you can unsubscribe any time; you are receiving this because you asked.",
        ),
        kind=MessageKind.REPLY,
        human=True,
    ),
    MailCase(
        name="'please unsubscribe me' without threading headers is a decline, not bulk",
        raw=mail("Please unsubscribe me from your list.", threaded=False),
        kind=MessageKind.REPLY,
        decline=True,
        human=True,
    ),
    # --- challenge-response (issue 17) ----------------------------------------------------
    MailCase(
        name="challenge without automatic headers: RE: subject, allowed list, one link",
        raw=mail(
            "Hello,\n\nI protect my inbox from spam. Your message has been held.\nPlease "
            "click the link below to be added to my allowed list:\n\n"
            "https://verify.inboxguard.example/c/8f2a9e\n\nThank you.",
            subject="RE: Offer for 40 seats",
        ),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.CHALLENGE,
        reason_part="the text",
    ),
    MailCase(
        name="Spam Arrest challenge known by its Return-Path",
        raw=mail(
            "Anna Berg uses Spam Arrest. Please verify your message so it can be delivered.",
            headers="Return-Path: <verify@spamarrest.com>\n",
        ),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.CHALLENGE,
        reason_part="Spam Arrest",
    ),
    MailCase(
        name="Bluebottle challenge that names itself in the text",
        raw=mail(
            "This e-mail address is protected by Bluebottle. Your message is held until you "
            "confirm you sent it: https://www.bluebottle.example/confirm/1",
            subject="Re: Offer for 40 seats",
        ),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.CHALLENGE,
        reason_part="the text",
    ),
    MailCase(
        name="MailWasher challenge known by its X-Mailer",
        raw=mail(
            "Your e-mail was not delivered yet. Reply to this message to confirm you are real.",
            headers="X-Mailer: MailWasher Pro 7.12\n",
        ),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.CHALLENGE,
        reason_part="MailWasher",
    ),
    MailCase(
        name="Boxbe request known by its sender",
        raw=mail(
            'Your message about "Offer for 40 seats" is waiting in Anna\'s Boxbe guest list.',
            sender="Boxbe <notify@boxbe.com>",
            threaded=False,
        ),
        kind=MessageKind.AUTO_REPLY,
        subkind=Subkind.CHALLENGE,
        reason_part="Boxbe",
    ),
    MailCase(
        name="a person who works at a challenge-response company replies: a reply",
        raw=mail(
            "Thanks Rita, Thursday works. I'll bring our IT lead.",
            sender="Sam Lee <sam.lee@boxbe.com>",
            headers="Return-Path: <sam.lee@boxbe.com>\n",
        ),
        kind=MessageKind.REPLY,
        human=True,
    ),
    MailCase(
        name="a person mentioning their allowed list with a form link is a reply",
        raw=mail(
            "Happy to talk. Our IT keeps an allowed list of vendors; could your team fill in "
            "https://vendors.buyer.org/form before Thursday?",
        ),
        kind=MessageKind.REPLY,
        human=True,
    ),
    MailCase(
        name="a colleague's mail is internal",
        raw=mail("Can you review?", sender="boss@seller.com", subject="Review"),
        kind=MessageKind.INTERNAL,
    ),
)
