"""The ``logging`` setting: Python logging for the duration of one run, as zappend offers it.

``true`` sends the ``versioncube`` logger's INFO messages to stderr, a level name sets another
level, and a dictionary is handed to ``logging.config.dictConfig`` (with
``disable_existing_loggers`` false unless it says otherwise). When the run ends, every logger
the setting touched gets its handlers, level and propagation back.
"""

from __future__ import annotations

import contextlib
import logging
import logging.config
from collections.abc import Iterator, Mapping
from typing import Any

from versioncube.errors import ConfigError

LOGGER_NAME = "versioncube"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def logging_for_run(setting: bool | str | Mapping[str, Any] | None) -> Iterator[None]:
    """Apply the ``logging`` setting while the block runs, then restore what it changed."""
    if not setting:
        yield
        return
    names = [LOGGER_NAME]
    if isinstance(setting, Mapping):
        names += [*setting.get("loggers", {}), *([""] if "root" in setting else [])]
    saved = {name: _state(logging.getLogger(name or None)) for name in names}
    try:
        _apply(setting)
        yield
    finally:
        for name, state in saved.items():
            _restore(logging.getLogger(name or None), state)


def _apply(setting: bool | str | Mapping[str, Any]) -> None:
    if isinstance(setting, Mapping):
        try:
            logging.config.dictConfig({"disable_existing_loggers": False, **setting})
        except (ValueError, TypeError, AttributeError, ImportError) as error:
            raise ConfigError(f"configuration key 'logging' cannot be applied: {error}") from None
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    logger.setLevel("INFO" if setting is True else setting)


def _state(logger: logging.Logger) -> dict[str, Any]:
    return {
        "handlers": list(logger.handlers),
        "level": logger.level,
        "propagate": logger.propagate,
        "disabled": logger.disabled,
    }


def _restore(logger: logging.Logger, state: Mapping[str, Any]) -> None:
    for handler in logger.handlers:
        if handler not in state["handlers"]:
            handler.close()
    logger.handlers = list(state["handlers"])
    logger.setLevel(state["level"])
    logger.propagate = state["propagate"]
    logger.disabled = state["disabled"]
