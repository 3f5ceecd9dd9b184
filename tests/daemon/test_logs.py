"""Daemon logging: JSON or text lines, a level per agent, no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from hvmon.daemon.logs import agent_logger, configure_logging, redact, set_agent_level


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name in ("quiet", "chatty"):
        set_agent_level(name, None)


def test_json_lines_with_per_agent_levels(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    set_agent_level("chatty", "debug")
    set_agent_level("quiet", "warning")
    logging.getLogger("hvmon.daemon").debug("hidden: the daemon is at info")
    logging.getLogger("hvmon.daemon").info("daemon line", extra={"agent": "x", "port": 9177})
    agent_logger("chatty").debug("chatty debug")
    agent_logger("quiet").info("hidden: quiet is at warning")
    agent_logger("quiet").warning("quiet warning")
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["message"] for r in records] == ["daemon line", "chatty debug", "quiet warning"]
    assert records[0]["level"] == "info" and records[0]["logger"] == "hvmon.daemon"
    assert records[0]["agent"] == "x" and records[0]["port"] == 9177
    assert records[1]["logger"] == "hvmon.agent.chatty"
    assert records[0]["ts"].endswith("Z")


def test_text_lines_and_reconfiguration_replaces_the_handler(restore_logging: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", "info", first)
    configure_logging("text", "warning", second)
    logging.getLogger("hvmon.daemon").warning("once\nonly")
    assert first.getvalue() == ""
    line = second.getvalue()
    assert line.endswith(" WARNING hvmon.daemon: once\\nonly\n")  # one line per record


def test_secrets_never_reach_the_log(restore_logging: None) -> None:
    assert redact("amqp://guest:guest@127.0.0.1:5672/") == "amqp://guest:***@127.0.0.1:5672/"
    assert redact("login password=hunter2 ok") == "login password=*** ok"
    assert redact('token: "abc123"') == 'token: "***"'
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    agent_logger("chatty").error("cannot reach %s", "amqp://ops:s3cret@broker:5672/",
                                 extra={"url": "amqp://ops:s3cret@broker/"})
    assert "s3cret" not in stream.getvalue()
    record = json.loads(stream.getvalue())
    assert record["message"] == "cannot reach amqp://ops:***@broker:5672/"
    assert record["url"] == "amqp://ops:***@broker/"
