"""The reader process's pipe framing survives short reads and writes: a pipe may take or give
part of what was asked (seen when a profiler paused the process mid-write), and a frame that
went out in part would shift every later one."""

from __future__ import annotations

import io
from typing import Any

from app.mail import reader


class Trickle(io.FileIO):
    """A pipe end that moves at most `step` bytes per call."""

    def __init__(self, data: bytes = b"", step: int = 7) -> None:
        self.data, self.out, self.step = data, bytearray(), step

    def read(self, size: int = -1) -> bytes:
        part, self.data = self.data[: min(size, self.step)], self.data[min(size, self.step) :]
        return part

    def write(self, b: Any) -> int:
        self.out += bytes(b)[: self.step]
        return min(len(b), self.step)


def test_a_write_taken_in_parts_goes_out_whole() -> None:
    pipe = Trickle()
    reader._write_all(pipe, b"x" * 100 + b"end")
    assert bytes(pipe.out) == b"x" * 100 + b"end"


def test_a_read_given_in_parts_is_joined_and_the_end_is_empty() -> None:
    pipe = Trickle(b"0123456789abcdef")
    assert reader._read_exactly(pipe, 12) == b"0123456789ab"
    assert reader._read_exactly(pipe, 8) == b""  # four bytes, then the end: no frame
