"""A first sync's batches: newest first, made from the folder's compact UID array."""

from __future__ import annotations

import random

import pytest

from app.mail.answers import uid_array
from app.mail.sync import NewestFirst, interleave


def as_lists(uids: list[int], below: int, size: int) -> list[list[int]]:
    """What the first sync read before the UIDs were kept compact: all of them as lists."""
    todo = sorted((u for u in uids if u < below), reverse=True)
    return [todo[start : start + size] for start in range(0, len(todo), size)]


@pytest.mark.parametrize("seed", range(20))
def test_the_batches_are_those_of_plain_lists(seed: int) -> None:
    rng = random.Random(seed)
    uids = sorted(rng.sample(range(1, 5_000), rng.randrange(0, 300)))
    below = rng.randrange(1, 5_200)
    size = rng.randrange(1, 40)
    batches = NewestFirst(uid_array(uids), below=below, size=size)
    expected = as_lists(uids, below, size)
    assert list(batches) == expected
    assert len(batches) == len(expected)
    assert sum(len(b) for b in batches) == sum(len(b) for b in expected)
    if expected:
        assert batches[-1] == expected[-1] and batches[0] == expected[0]
        assert list(batches[1:3]) == expected[1:3]


def test_a_batch_past_the_end_is_an_index_error() -> None:
    batches = NewestFirst(uid_array([3, 5, 8]), below=9, size=2)
    assert list(batches) == [[8, 5], [3]]
    with pytest.raises(IndexError):
        batches[2]


def test_a_million_uids_are_held_in_four_megabytes() -> None:
    uids = uid_array(range(1_000_000_000, 1_002_000_000, 2))
    assert uids.itemsize * len(uids) == 4_000_000
    batches = NewestFirst(uids, below=2_000_000_000, size=4000)
    assert (
        len(batches) == 250 and batches[0][0] == 1_001_999_998 and batches[-1][-1] == 1_000_000_000
    )


@pytest.mark.parametrize("seed", range(40))
def test_a_small_first_batch_doubles_up_to_the_batch_size(seed: int) -> None:
    rng = random.Random(seed)
    uids = sorted(rng.sample(range(1, 5_000), rng.randrange(0, 300)))
    below = rng.randrange(1, 5_200)
    size = rng.randrange(1, 40)
    first = rng.randrange(1, size + 1)
    todo = sorted((u for u in uids if u < below), reverse=True)
    expected: list[list[int]] = []
    rest, step = todo, first
    while rest and step < size:  # first, 2 x first, 4 x first… while smaller than size
        expected.append(rest[:step])
        rest, step = rest[step:], min(step * 2, size)
    expected += [rest[start : start + size] for start in range(0, len(rest), size)]
    batches = NewestFirst(uid_array(uids), below=below, size=size, first=first)
    assert list(batches) == expected
    assert len(batches) == len(expected)
    assert [list(batches[i]) for i in range(-len(expected), 0)] == expected
    assert [u for batch in batches for u in batch] == todo  # each UID once, newest first


def test_a_first_read_ramps_500_1000_2000_then_4000() -> None:
    batches = NewestFirst(uid_array(range(1, 10_001)), below=10_001, size=4000, first=500)
    assert [len(b) for b in batches] == [500, 1000, 2000, 4000, 2500]
    assert batches[0][0] == 10_000 and batches[-1][-1] == 1


def test_folders_go_back_in_time_together() -> None:
    # INBOX with 6 batches, Sent with 3, Archive with none: Sent every other step.
    order = interleave([6, 3, 0])
    assert order == [(0, 0), (1, 0), (0, 1), (0, 2), (1, 1), (0, 3), (0, 4), (1, 2), (0, 5)]
    for source, size in enumerate([6, 3, 0]):  # each folder's batches all, in their order
        assert [i for s, i in order if s == source] == list(range(size))
