"""The ``profiling`` setting: a cProfile report of the run, with zappend's meaning.

``true`` logs the report at INFO (on the ``versioncube`` logger), a string writes it to that
file too, and ``{enabled, path, log_level, keys, restrictions}`` chooses where it goes
(``log_level: NOTSET`` logs nothing), how it is sorted (pstats keys, default ``tottime``) and
which lines it shows (pstats restrictions). The report is written even when the run fails.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import logging
import pstats
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger("versioncube")


@contextlib.contextmanager
def profiled(setting: bool | str | Mapping[str, Any] | None) -> Iterator[None]:
    """Profile the block as the ``profiling`` setting says."""
    options = _options(setting)
    enabled = options["enabled"] and (options["path"] or options["log_level"] != "NOTSET")
    if not enabled:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        _report(profile, options)


def _options(setting: bool | str | Mapping[str, Any] | None) -> dict[str, Any]:
    options = {
        "enabled": bool(setting),
        "path": None,
        "log_level": "INFO",
        "keys": ["tottime"],
        "restrictions": [],
    }
    if isinstance(setting, str):
        options["path"] = setting
    elif isinstance(setting, Mapping):
        options.update({"enabled": True, **setting})
    return options


def _report(profile: cProfile.Profile, options: Mapping[str, Any]) -> None:
    text = io.StringIO()
    stats = pstats.Stats(profile, stream=text)
    stats.sort_stats(*options["keys"]).print_stats(*options["restrictions"])
    if options["log_level"] != "NOTSET":
        logger.log(
            logging.getLevelName(options["log_level"]), "profile of the run:\n%s", text.getvalue()
        )
    if options["path"]:
        Path(options["path"]).write_text(text.getvalue())
        logger.info("profile of the run written to %s", options["path"])
