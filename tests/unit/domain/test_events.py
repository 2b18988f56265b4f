from app.domain.events import EventType, thread_events
from app.domain.model import ThreadState as S


def test_first_sight_emits_only_what_needs_action() -> None:
    assert thread_events(
        old_state=None, new_state=S.QUIET, old_needs_response=False, new_needs_response=False
    ) == [EventType.THREAD_QUIET]
    assert (
        thread_events(
            old_state=None, new_state=S.REPLIED, old_needs_response=False, new_needs_response=False
        )
        == []
    )


def test_once_per_change() -> None:
    assert thread_events(
        old_state=S.AWAITING_REPLY,
        new_state=S.QUIET,
        old_needs_response=False,
        new_needs_response=False,
    ) == [EventType.THREAD_QUIET]
    assert (
        thread_events(
            old_state=S.QUIET, new_state=S.QUIET, old_needs_response=False, new_needs_response=False
        )
        == []
    )
    assert thread_events(
        old_state=S.QUIET, new_state=S.REPLIED, old_needs_response=False, new_needs_response=True
    ) == [EventType.THREAD_REPLIED, EventType.THREAD_NEEDS_RESPONSE]


def test_first_sight_of_an_unanswered_reply_is_not_replayed() -> None:
    assert (
        thread_events(
            old_state=None, new_state=S.REPLIED, old_needs_response=False, new_needs_response=True
        )
        == []
    )
