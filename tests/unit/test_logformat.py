"""RADIOSILENCE_LOG_FORMAT=json: one JSON object per line, the event named."""

import json
import logging

from app.logformat import JsonFormatter


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("app.workers", logging.INFO, __file__, 1, message, args, exc_info)


def test_a_line_is_one_object_with_the_event_named() -> None:
    line = JsonFormatter().format(record("sync.done mailbox=%s new=%s", 7, 3))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["event"] == "sync.done"
    assert entry["message"] == "sync.done mailbox=7 new=3"
    assert entry["level"] == "INFO" and entry["logger"] == "app.workers"
    assert entry["time"].endswith("+00:00")


def test_plain_messages_have_no_event_and_tracebacks_stay_in_the_object() -> None:
    entry = json.loads(JsonFormatter().format(record("Started server process [%s]", 12)))
    assert "event" not in entry
    failed = JsonFormatter().format(record("workers.sync_error mailbox=%s", 1, exc=True))
    assert "\n" not in failed
    assert "ValueError: boom" in json.loads(failed)["exc"]
