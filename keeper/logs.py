"""Structured logging: readable lines on a terminal, JSON lines otherwise (files, pipes, CI).

Every event is a name plus key=value fields, so that a decision can be reconstructed from the log.
Secrets never reach here: nothing logs a key, and `redact` drops any field named like one; a
field named like a URL (`rpc_url`, `url`, `ws_url`, ...) is shown as scheme://host:port only, as
error messages show node URLs (`redacted_url`): a provider's API key sits in the path or the user part.
"""

from __future__ import annotations

import logging
import sys
from typing import Any
from urllib.parse import urlsplit

import structlog

_SECRET_WORDS = ("private_key", "password", "secret", "mnemonic")


def redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        lowered = key.lower()
        if any(word in lowered for word in _SECRET_WORDS):
            event[key] = "<redacted>"
        elif lowered.endswith("url") and isinstance(event[key], str):
            event[key] = redacted_url(event[key])
    return event


def redacted_url(value: str) -> str:
    """A URL as it may be printed: scheme and host (and port) only; a provider's key often sits in
    the path or the user part, and an error message must not carry it."""
    try:
        parts = urlsplit(value)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "<not shown: not a URL>"
    if not parts.scheme or not host:
        return "<not shown: not a URL>" if len(value) > 16 else value
    hidden = "/..." if (parts.path.strip("/") or parts.query or parts.username) else ""
    shown_host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown_host}{f':{port}' if port else ''}{hidden}"


def configure_logging(level: str = "INFO", json_lines: bool | None = None, stream: Any = None,
                      tap: Any = None) -> None:
    """Call once at process start. json_lines=None picks JSON when the stream is not a TTY.
    `tap`, a structlog processor, sees every event that passes the level (the live panel's feed)."""
    stream = stream or sys.stderr
    if json_lines is None:
        json_lines = not stream.isatty()
    renderer: Any = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer(colors=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            *([tap] if tap is not None else []),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def level_enabled(level: int) -> bool:
    """Would an event at `level` (logging.INFO, ...) be emitted under the current configuration?
    Cheap (no logger is bound): a hot path builds an event's fields only when it is emitted."""
    check = getattr(structlog.get_config()["wrapper_class"], "is_enabled_for", None)
    return True if check is None else bool(check(None, level))


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
