from app.domain.folders import FolderInfo, folders_to_sync, pick_folder


def f(name: str, *flags: str) -> FolderInfo:
    return FolderInfo(name=name, flags=frozenset({"\\HasNoChildren", *flags}))


def test_everything_but_junk_trash_drafts_inbox_first() -> None:
    listed = [
        f("Sent", "\\Sent"),
        f("Trash", "\\Trash"),
        f("Junk", "\\Junk"),
        f("Drafts", "\\Drafts"),
        f("Clients/Acme"),
        f("INBOX"),
        f("Old", "\\Noselect"),
    ]
    assert [x.name for x in folders_to_sync(listed, gmail=False)] == [
        "INBOX",
        "Clients/Acme",
        "Sent",
    ]


def test_names_decide_when_the_server_has_no_special_use() -> None:
    listed = [f("INBOX"), f("INBOX.Spam"), f("INBOX.Sent Items"), f("Deleted Items")]
    listed = [FolderInfo(name=x.name, flags=x.flags, delimiter=".") for x in listed]
    assert [x.name for x in folders_to_sync(listed, gmail=False)] == ["INBOX", "INBOX.Sent Items"]


def test_gmail_reads_all_mail_alone() -> None:
    listed = [f("INBOX"), f("[Gmail]/All Mail", "\\All"), f("[Gmail]/Sent Mail", "\\Sent")]
    assert [x.name for x in folders_to_sync(listed, gmail=True)] == ["[Gmail]/All Mail"]


def test_include_and_exclude_override_the_defaults() -> None:
    listed = [f("INBOX"), f("Sent", "\\Sent"), f("Trash", "\\Trash"), f("Newsletters")]
    chosen = folders_to_sync(listed, gmail=False, include={"Trash"}, exclude={"Newsletters"})
    assert [x.name for x in chosen] == ["INBOX", "Sent", "Trash"]


def test_a_folder_leaf_is_the_last_part_of_its_name() -> None:
    assert FolderInfo(name="INBOX.Drafts", flags=frozenset(), delimiter=".").leaf == "Drafts"
    assert FolderInfo(name="Drafts", flags=frozenset()).leaf == "Drafts"
    assert FolderInfo(name="A/B", flags=frozenset(), delimiter="").leaf == "A/B"


def test_pick_folder_prefers_the_special_use_then_the_leaf_name() -> None:
    names = ("drafts", "entwürfe")
    marked = [f("Entwürfe"), f("Old", "\\Drafts", "\\Noselect"), f("Work", "\\Drafts")]
    assert pick_folder(marked, "\\Drafts", names) == "Work"
    nested = [FolderInfo(name=n, flags=frozenset(), delimiter=".") for n in ("INBOX.Entwürfe",)]
    assert pick_folder(nested, "\\Drafts", names) == "INBOX.Entwürfe"
    assert pick_folder([f("Drafts", "\\Noselect"), f("Archive")], "\\Drafts", names) is None
