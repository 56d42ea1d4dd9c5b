"""The logging setting configures Python logging for the run, and restores it afterwards."""

from __future__ import annotations

import logging

import pytest

import versioncube
from versioncube.errors import ConfigError


@pytest.fixture
def package_logger():
    logger = logging.getLogger("versioncube")
    before = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    assert (list(logger.handlers), logger.level, logger.propagate) == before


@pytest.mark.parametrize("setting", [True, "INFO", "DEBUG"])
def test_short_forms_log_the_run_to_stderr(
    setting, package_logger, capfd, memory_target, small_slice
):
    versioncube.append([small_slice("2024-01-01")], target_dir=memory_target, logging=setting)

    lines = capfd.readouterr().err.splitlines()
    assert any(
        line.endswith(f"INFO versioncube.write.run: appending to {memory_target} (branch main)")
        for line in lines
    )
    assert any("appended dataset xxh3:" in line and "creating the cube" in line for line in lines)


def test_a_warning_level_hides_the_run(package_logger, capfd, memory_target, small_slice):
    versioncube.append([small_slice("2024-01-01")], target_dir=memory_target, logging="WARNING")
    assert capfd.readouterr().err == ""


def test_a_dict_configures_logging_with_dictconfig(
    package_logger, tmp_path, memory_target, small_slice
):
    log = tmp_path / "run.log"
    setting = {
        "version": 1,
        "formatters": {"short": {"format": "%(levelname)s %(message)s"}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(log), "formatter": "short"}
        },
        "loggers": {"versioncube": {"level": "INFO", "handlers": ["file"]}},
    }
    versioncube.append([small_slice("2024-01-01")], target_dir=memory_target, logging=setting)

    lines = log.read_text().splitlines()
    assert lines[0] == f"INFO appending to {memory_target} (branch main)"
    assert lines[-1].startswith("INFO appended 1 slice, skipped 0")


def test_an_unusable_dict_is_a_config_error(package_logger, memory_target, small_slice):
    setting = {"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}
    with pytest.raises(ConfigError, match="configuration key 'logging' cannot be applied"):
        versioncube.append([small_slice("2024-01-01")], target_dir=memory_target, logging=setting)
