"""The profiling setting: a cProfile report of the run, logged and/or written to a file."""

from __future__ import annotations

import logging

import pytest

import versioncube


def test_a_path_writes_the_report(tmp_path, memory_target, small_slice, caplog):
    report = tmp_path / "profile.txt"
    with caplog.at_level(logging.INFO, logger="versioncube"):
        versioncube.append(
            [small_slice("2024-01-01")], target_dir=memory_target, profiling=str(report)
        )

    text = report.read_text()
    assert "function calls" in text
    assert "Ordered by: internal time" in text
    assert "versioncube/write/append.py" in text
    assert any(r.getMessage().startswith("profile of the run:\n") for r in caplog.records)


@pytest.mark.parametrize(
    ("setting", "logged", "ordered_by"),
    [
        (True, True, "internal time"),
        (
            {"log_level": "WARNING", "keys": ["cumulative"], "restrictions": [5]},
            True,
            "cumulative time",
        ),
        ({"log_level": "NOTSET"}, False, None),
        ({"enabled": False}, False, None),
        (False, False, None),
    ],
    ids=["true", "options", "not-logged", "disabled", "false"],
)
def test_profiling_settings(setting, logged, ordered_by, memory_target, small_slice, caplog):
    with caplog.at_level(logging.INFO, logger="versioncube"):
        versioncube.append([small_slice("2024-01-01")], target_dir=memory_target, profiling=setting)

    reports = [r for r in caplog.records if r.getMessage().startswith("profile of the run:\n")]
    assert len(reports) == (1 if logged else 0)
    if logged:
        assert f"Ordered by: {ordered_by}" in reports[0].getMessage()
        expected_level = setting.get("log_level", "INFO") if isinstance(setting, dict) else "INFO"
        assert reports[0].levelname == expected_level


def test_restrictions_limit_the_report(tmp_path, memory_target, small_slice):
    report = tmp_path / "short.txt"
    profiling = {"path": str(report), "log_level": "NOTSET", "restrictions": [3]}
    versioncube.append([small_slice("2024-01-01")], target_dir=memory_target, profiling=profiling)
    assert "due to restriction <3>" in report.read_text()
