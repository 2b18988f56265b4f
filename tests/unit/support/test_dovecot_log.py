"""The reader of Dovecot's log that the worker-fleet test relies on finds what it must."""

from pathlib import Path

from tests.support.dovecot_log import overlaps, sessions

LOG = """\
Dec 04 21:59:18 imap-login: Info: Login: user=<u1>, method=PLAIN, session=<A>
Dec 04 21:59:18 imap(u1)<1><A>: Info: ID sent: name=radiosilence, x-worker=h:1, x-purpose=sync
Dec 04 21:59:18 imap(u1)<2><B>: Info: ID sent: name=radiosilence, x-worker=h:1, x-purpose=watch
Dec 04 21:59:18 imap(u1)<1><A>: Info: Disconnected: Logged out in=83 out=559
Dec 04 21:59:19 imap(u1)<3><C>: Info: ID sent: name=radiosilence, x-worker=h:2, x-purpose=sync
Dec 04 21:59:19 imap(u1)<4><D>: Info: ID sent: name=radiosilence, x-worker=h:3, x-purpose=sync
Dec 04 21:59:19 imap(u1)<3><C>: Info: Disconnected: Logged out in=83 out=559
Dec 04 21:59:19 imap(u2)<5><E>: Info: ID sent: name=radiosilence, x-worker=h:2, x-purpose=watch
"""


def test_sessions_and_clashes_are_read_from_the_log(tmp_path: Path) -> None:
    path = tmp_path / "dovecot.log"
    path.write_text(LOG)
    found = sessions(path)
    assert sorted((s.user, s.worker, s.purpose) for s in found) == [
        ("u1", "h:1", "sync"),
        ("u1", "h:1", "watch"),
        ("u1", "h:2", "sync"),
        ("u1", "h:3", "sync"),
        ("u2", "h:2", "watch"),
    ]
    # h:1's sync ended before h:2's began; h:2's and h:3's syncs of u1 overlap; a watch and a
    # sync of one mailbox at once are allowed (separate leases).
    clashes = overlaps(found)
    assert [(a.worker, b.worker) for a, b in clashes] == [("h:2", "h:3")]
