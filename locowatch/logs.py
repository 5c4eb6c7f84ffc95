"""Logging set-up shared by every command and service: one line per event.

``text`` (the default) is for people at a terminal; ``json`` emits one JSON object per
line for log shippers (Loki, Elasticsearch). Code logs with ``%``-style arguments, so a
message is only formatted when it is emitted.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

LogFormat = Literal["text", "json"]
LEVEL_ENV = "LOCOWATCH_LOG_LEVEL"
FORMAT_ENV = "LOCOWATCH_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str | None = None, fmt: LogFormat | None = None) -> None:
    """Configure the root logger; arguments win over the LOCOWATCH_LOG_* variables.

    The choice is also written back to those variables, so child processes (the edge
    supervisor's services) log the same way.
    """
    level = (level or os.environ.get(LEVEL_ENV) or "INFO").upper()
    chosen = fmt or os.environ.get(FORMAT_ENV) or "text"
    os.environ[LEVEL_ENV], os.environ[FORMAT_ENV] = level, chosen
    handler = logging.StreamHandler(sys.stderr)
    if chosen == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def redact(url: str, keep_user: bool = True) -> str:
    """``url`` without its password, for logs, health messages and printed output
    (``keep_user=False``: without the whole login, for copies of a config).

    >>> redact("rtsp://admin:secret@10.0.0.7:554/stream1")
    'rtsp://admin:***@10.0.0.7:554/stream1'
    >>> redact("rtsp://admin:secret@10.0.0.7:554/stream1", keep_user=False)
    'rtsp://10.0.0.7:554/stream1'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    login = f"{parts.username}:***@" if keep_user else ""
    return urlunsplit(parts._replace(netloc=f"{login}{host}"))
