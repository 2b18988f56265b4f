"""The sample mailbox written out as a Maildir (Maildir++ folders: ".Sent"), the layout both
Dovecot and `radiosilence import` read. Each file's time is its message's date, which
Dovecot takes as the INTERNALDATE."""

from __future__ import annotations

import mailbox
from pathlib import Path

from app.demo.sample import SampleMailbox


def write_maildir(sample: SampleMailbox, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    root = mailbox.Maildir(path, factory=None, create=True)
    boxes: dict[str, mailbox.Maildir] = {"INBOX": root}
    try:
        for item in sample.messages:
            box = boxes.get(item.folder)
            if box is None:
                box = boxes[item.folder] = root.add_folder(item.folder)
            message = mailbox.MaildirMessage(item.raw)
            message.set_subdir("cur")
            # The rep has read everything but the newest inbound mail; their own is read.
            message.set_flags("S" if item.folder == "Sent" else "")
            message.set_date(item.date.timestamp())
            box.add(message)
    finally:
        for box in boxes.values():
            box.close()
