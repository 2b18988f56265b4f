"""Which folders of a mailbox to read: all but Junk, Trash and Drafts; on Gmail, All Mail alone."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

EXCLUDED_SPECIAL_USE = frozenset({"\\Junk", "\\Trash", "\\Drafts"})
# Used only when the server does not mark folders with SPECIAL-USE (RFC 6154).
EXCLUDED_NAMES = frozenset(
    {
        "junk",
        "junk e-mail",
        "junk email",
        "spam",
        "bulk mail",
        "trash",
        "deleted items",
        "deleted messages",
        "bin",
        "drafts",
        "draft",
        "papierkorb",
        "entwürfe",
        "corbeille",
        "brouillons",
        "papelera",
        "borradores",
        "outbox",
    }
)
SPECIAL_USES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")


@dataclass(frozen=True, kw_only=True)
class FolderInfo:
    name: str
    flags: frozenset[str]  # as listed, e.g. {"\\HasNoChildren", "\\Sent"}
    delimiter: str = "/"

    @property
    def special_use(self) -> str | None:
        lowered = {f.lower() for f in self.flags}
        return next((su for su in SPECIAL_USES if su.lower() in lowered), None)

    @property
    def selectable(self) -> bool:
        lowered = {f.lower() for f in self.flags}
        return not ({"\\noselect", "\\nonexistent"} & lowered)

    @property
    def leaf(self) -> str:
        """The last part of the name: "Drafts" for "INBOX/Drafts"."""
        return self.name.rsplit(self.delimiter, 1)[-1] if self.delimiter else self.name


def folders_to_sync(
    folders: Sequence[FolderInfo],
    *,
    gmail: bool,
    include: Collection[str] = (),
    exclude: Collection[str] = (),
) -> list[FolderInfo]:
    """The folders to read, INBOX first (replies land there first).

    `exclude` names folders never to read; `include` names folders to read although the
    defaults would skip them (a rep who keeps conversations in an archive under Trash, say).
    """
    usable = [f for f in folders if f.selectable and f.name not in exclude]
    if gmail:
        all_mail = [f for f in usable if f.special_use == "\\All"]
        if all_mail:
            return all_mail + [f for f in usable if f.name in include and f not in all_mail]
    marked = any(f.special_use for f in usable)
    chosen = []
    for f in usable:
        skipped = f.special_use in EXCLUDED_SPECIAL_USE or (
            not marked and f.leaf.lower() in EXCLUDED_NAMES
        )
        if skipped and f.name not in include:
            continue
        chosen.append(f)
    return sorted(chosen, key=lambda f: (f.name.upper() != "INBOX", f.name))


def pick_folder(
    folders: Sequence[FolderInfo], special_use: str, names: Collection[str]
) -> str | None:
    """The first selectable folder marked `special_use` (RFC 6154); else the first whose leaf
    name, lower-cased, is one of `names`; else None."""
    marked = [f.name for f in folders if f.special_use == special_use and f.selectable]
    if marked:
        return marked[0]
    for f in folders:
        if f.selectable and f.leaf.lower() in names:
            return f.name
    return None
