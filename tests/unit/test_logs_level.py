"""`level_enabled` answers whether an event at a level reaches the output, without binding a logger:
hot paths (the engine's per-block events) build their fields only when it says yes."""

from __future__ import annotations

import io
import logging

import structlog

from keeper.logs import configure_logging, get_logger, level_enabled


def test_given_a_configured_level_when_asked_then_exactly_the_levels_that_are_emitted_are_enabled() -> None:
    stream = io.StringIO()
    try:
        for name, emitted in (("WARNING", {logging.WARNING, logging.ERROR}),
                              ("INFO", {logging.INFO, logging.WARNING, logging.ERROR}),
                              ("DEBUG", {logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR})):
            configure_logging(name, json_lines=True, stream=stream)
            for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR):
                before = stream.tell()
                get_logger("test").log(level, "test.level")
                assert level_enabled(level) == (level in emitted) == (stream.tell() > before), (name, level)
    finally:
        structlog.reset_defaults()
