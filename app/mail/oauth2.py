"""The OAuth2 refresh hook: an operator's command that prints a fresh access token.

Access tokens of Google and Microsoft 365 live about an hour. Rather than embedding one
provider's token endpoint and client secrets, the operator names a command (as mbsync's
PassCmd and msmtp's passwordeval do): it gets the IMAP username as its last argument and
prints the token; tools such as oama or mutt_oauth2.py already do this for every provider.
The token is never logged; the command's error output is shown, shortened.
"""

from __future__ import annotations

import shlex
import subprocess

from app.errors import MailAuthError

_ERROR_TAIL = 300  # characters of the command's stderr shown in the mailbox's status


def run_refresh_command(command: str, username: str, *, timeout: float = 30.0) -> str:
    """Run `command USERNAME` (no shell) and return the last non-empty line it printed."""
    argv = [*shlex.split(command), username]
    what = f"the OAuth2 refresh command {shlex.quote(argv[0])}"
    try:
        done = subprocess.run(  # noqa: S603 - the operator's own command, without a shell
            argv, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise MailAuthError(
            f"{what} was not found: fix RADIOSILENCE_OAUTH2_REFRESH_COMMAND"
        ) from None
    except subprocess.TimeoutExpired:
        raise MailAuthError(f"{what} did not answer within {timeout:.0f} s") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip()[-_ERROR_TAIL:]
        raise MailAuthError(
            f"{what} failed for {username} (exit {done.returncode})" + (f": {said}" if said else "")
        )
    lines = [ln.strip() for ln in done.stdout.decode("utf-8", "replace").splitlines()]
    token = next((ln for ln in reversed(lines) if ln), "")
    if not token:
        raise MailAuthError(f"{what} printed no token for {username}")
    return token
