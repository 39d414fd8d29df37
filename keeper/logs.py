"""Structured logging: readable lines on a terminal, JSON lines otherwise (files, pipes, CI).

Every event is a name plus key=value fields, so that a decision can be reconstructed from the log.
Secrets never reach here: nothing logs a key, and `redact` drops any field named like one; a
field named like a URL (`rpc_url`, `url`, `ws_url`, ...) is shown as scheme://host:port only, as
error messages show node URLs (`redacted_url`), and so is any URL inside another field's text (an
error's message; the CLI's error line too): a provider's API key sits in the path, the query or
the user part.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

_SECRET_WORDS = ("private_key", "password", "secret", "mnemonic")


def redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        lowered = key.lower()
        if any(word in lowered for word in _SECRET_WORDS):
            event[key] = "<redacted>"
        elif isinstance(event[key], str) and "://" in event[key]:
            value = event[key]
            event[key] = redacted_url(value) if lowered.endswith("url") else redact_urls(value)
    return event


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]*")  # to the next space or quote
_TRAILING = ".,:;!?)]}"  # the sentence's, after a URL ("... at http://host:8545." or "(http://host/x)")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(:[0-9]{0,5})?")  # a name or an IPv6 literal, a port


def redact_urls(text: str) -> str:
    """Every URL inside `text` (an error message, a node's stderr) as `redacted_url` shows it; the
    punctuation of the sentence around it stays where it was."""
    def shown(match: re.Match[str]) -> str:
        url = match.group()
        kept = url.rstrip(_TRAILING)
        return redacted_url(kept) + url[len(kept):]
    return _URL_IN_TEXT.sub(shown, text)


def redacted_url(value: str) -> str:
    """A URL as it may be printed: scheme and host (and port) as given; a path, a query or a user
    part, where providers put their keys, becomes "/...". Split as text, not parsed, so that a URL
    a parser refuses (a bad port) is still shown without its secret part. A user part ends at the
    LAST "@" (a pasted password may hold "/", "?" or "#"); a host that is not a plain name or IPv6
    literal with digits for a port is not shown (it may be a piece of a secret). A value with no
    scheme://host is not shown at all when long enough to be a key."""
    scheme, sep, rest = value.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return "<not shown: not a URL>" if len(value) > 16 else value
    userinfo, at, after = rest.rpartition("@")
    host = re.split(r"[/?#]", after, maxsplit=1)[0]
    if not host or not _HOST.fullmatch(host):
        return "<not shown: not a URL>" if (at or len(value) > 16) else value
    hidden = "/..." if (after[len(host):].strip("/") or at) else ""
    return f"{scheme}://{host}{hidden}"


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
