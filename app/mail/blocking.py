"""The thread pool for blocking mail I/O (imaplib and smtplib are synchronous).

A pool of its own, sized by RADIOSILENCE_MAIL_THREADS: a mail server that accepts and never
answers holds one of these threads until its timeout, never one of the loop's default
executor that the rest of the application (DNS lookups, template checks …) relies on.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class MailThreads:
    def __init__(self, size: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="mail")

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` on a mail thread, with the caller's context variables (as
        asyncio.to_thread does)."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args, **kwargs)
        return await loop.run_in_executor(self.executor, call)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
