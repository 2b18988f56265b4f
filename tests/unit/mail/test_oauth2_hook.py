"""The OAuth2 refresh hook runs the operator's command: its answers and its failures."""

from __future__ import annotations

import shlex
import sys

import pytest

from app.errors import MailAuthError
from app.mail.oauth2 import run_refresh_command

PY = shlex.quote(sys.executable)


def test_the_last_printed_line_is_the_token_and_the_username_comes_last() -> None:
    command = f'{PY} -c \'import sys; print("fetching…"); print("tok-" + sys.argv[-1]); print()\''
    assert run_refresh_command(command, "rep@x.example") == "tok-rep@x.example"


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("/nonexistent/refresh-token", "was not found"),
        (
            f"{PY} -c 'import sys; sys.stderr.write(\"invalid_grant\"); sys.exit(2)'",
            "invalid_grant",
        ),
        (f"{PY} -c 'pass'", "printed no token"),
        (f"{PY} -c 'import time; time.sleep(5)'", "did not answer within 1 s"),
    ],
)
def test_failures_say_what_went_wrong(command: str, words: str) -> None:
    with pytest.raises(MailAuthError, match=words):
        run_refresh_command(command, "rep@x.example", timeout=1)
