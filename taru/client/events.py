"""
Taru's event stream: server-sent events split into their messages, and each
event as a line for people.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable


def describe_event(message: object) -> str | None:
    """
    An event as a line for people, without its time; L{None} for heartbeats.
    """
    if not isinstance(message, list) or len(message) != 2:
        return json.dumps(message, ensure_ascii=False)
    task, event = message
    if task is None:
        if event == "Ping":
            return None
        if event == "UpdateConfig":
            return "configuration reloaded"
        if event == "Resync":
            return "events were missed: the task list may have changed"
        return json.dumps(event, ensure_ascii=False)
    if event == "Started":
        return f"{task} started"
    if isinstance(event, dict) and "ExitStatus" in event:
        code = event["ExitStatus"]
        if code is None:
            return f"{task} ended: killed by a signal"
        return f"{task} ended: exit code {code}"
    return f"{task} {json.dumps(event, ensure_ascii=False)}"


def is_heartbeat(message: object) -> bool:
    """
    Whether an event is only Taru's heartbeat.
    """
    return message == [None, "Ping"]


class EventParser:
    """
    Splits a server-sent event stream, fed in chunks of any size, into its
    messages' C{data}.

    @ivar last_event_id: the last C{id} received.
    """

    def __init__(self, receive: Callable[[str], None]) -> None:
        """
        @param receive: called with each message's data, its lines joined by
            newlines.
        """
        self._receive = receive
        self._pending = b""
        self._after_cr = False
        self._data: list[str] = []
        self.last_event_id: str | None = None

    def feed(self, chunk: bytes) -> None:
        """
        Take the next chunk of the stream.
        """
        if self._after_cr and chunk.startswith(b"\n"):
            # The second half of a CRLF split between chunks.
            chunk = chunk[1:]
        if chunk:
            self._after_cr = chunk.endswith(b"\r")
        lines = re.split(rb"\r\n|\r|\n", self._pending + chunk)
        self._pending = lines.pop()
        for line in lines:
            self._line(line.decode("utf-8", "replace"))

    def _line(self, line: str) -> None:
        if not line:
            self._dispatch()
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "id":
            self.last_event_id = value

    def _dispatch(self) -> None:
        if not self._data:
            return
        text = "\n".join(self._data)
        self._data = []
        self._receive(text)
