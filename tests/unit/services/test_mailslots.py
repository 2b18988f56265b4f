"""Per-user mail slots: a user beyond the limit is told to come back, others are not."""

import pytest

from app.errors import RateLimited
from app.services.mailslots import UserSlots


def test_a_user_beyond_the_limit_gets_too_busy_and_others_do_not() -> None:
    slots = UserSlots(2, retry_after=10)
    with slots.hold(1), slots.hold(1):
        with pytest.raises(RateLimited) as caught:
            slots.take(1)
        assert caught.value.retry_after == 10
        assert "2 connection tests, approvals or syncs running" in caught.value.message
        with slots.hold(2):  # another user is not held up
            pass
    with slots.hold(1), slots.hold(1):  # released, also after an error inside
        pass
    with pytest.raises(RuntimeError), slots.hold(1):
        raise RuntimeError("the server went away")
    slots.take(1)
    slots.take(1)
    slots.release(1)
    slots.release(1)
