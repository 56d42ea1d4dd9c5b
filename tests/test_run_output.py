"""What a run prints: JSON errors, Ctrl-C, the log summary, help texts, quiet libraries, and
the same order of variables on every run."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import versioncube
from versioncube import open_cube
from versioncube.samples import sample_slice, write_daily_files
from versioncube.testing import commits
from versioncube.testing.cli_checks import run_cli


def _clean_env() -> dict[str, str]:
    """The environment of a user who set no ICECHUNK_LOG of their own."""
    env = dict(os.environ)
    env.pop("ICECHUNK_LOG", None)
    return env


def test_json_errors_are_a_json_object_with_the_results_so_far(tmp_path, daily_files):
    missing = tmp_path / "2024-03-04.nc"
    result = run_cli("append", "--json", "-t", tmp_path / "cube", *daily_files[:3], missing)

    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["error"]["type"] == "SliceNotFoundError"
    assert "file not found" in payload["error"]["message"]
    assert payload["summary"]["appended"] == 3
    assert result.stderr.strip().startswith("Error: slice 2024-03-04.nc")


def test_the_logged_summary_shows_the_real_elapsed_time(memory_target, small_slice, caplog):
    with caplog.at_level(logging.INFO, logger="versioncube"):
        summary = versioncube.append_slices(
            [small_slice(f"2024-01-0{day}") for day in range(1, 4)],
            target_dir=memory_target,
            logging=True,
        )
    assert summary.elapsed > 0
    assert summary.headline() in [record.getMessage() for record in caplog.records]


def test_log_help_names_no_argument_it_does_not_take():
    text = run_cli("log", "--help").stdout
    assert "--at REF" in text and "REF is" not in text


def test_api_errors_name_no_cli_flags(memory_target, small_slice):
    with pytest.raises(versioncube.ConfigError) as no_target:
        versioncube.append([small_slice("2024-01-01")])
    versioncube.append([small_slice("2024-01-01")], target_dir=memory_target)
    with pytest.raises(versioncube.VersionError) as unsafe:
        open_cube(memory_target).gc("1h")
    for error in (no_target.value, unsafe.value):
        assert " -t" not in str(error) and "--" not in str(error), str(error)


@pytest.mark.slow
def test_ctrl_c_stops_after_the_current_commit(tmp_path):
    paths = write_daily_files(tmp_path / "slices", "2024-01-01", 150, shape=(30, 60))
    target = tmp_path / "cube"
    command = [sys.executable, "-m", "versioncube", "append", "-t", str(target), *map(str, paths)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # interrupt once a few commits are made
        if (target / "repo").exists() and len(commits(open_cube(target))) >= 3:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr[-2000:]
    assert "interrupted: appended" in stderr and "Traceback" not in stderr
    committed = len(commits(open_cube(target)))
    assert f"interrupted: appended {committed}," in stderr  # what it says is what is there
    assert 3 <= committed < 150
    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0
    assert len(commits(open_cube(target))) == 150


@pytest.mark.slow
def test_icechunk_stays_quiet_in_python_unless_asked(tmp_path):
    script = textwrap.dedent(
        f"""
        import versioncube
        from versioncube.samples import sample_slice
        days = [sample_slice(d, shape=(3, 6)) for d in ("2024-01-01", "2024-01-02")]
        versioncube.append(days, target_dir={str(tmp_path / "cube")!r})
        print(versioncube.open_dataset({str(tmp_path / "cube")!r}).sizes["time"])
        """
    )
    quiet = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=_clean_env()
    )
    assert quiet.returncode == 0 and quiet.stdout.strip() == "2"
    assert quiet.stderr == ""

    asked = subprocess.run(
        [sys.executable, "-c", script.replace("/cube", "/cube2")],
        capture_output=True,
        text=True,
        env={**_clean_env(), "ICECHUNK_LOG": "warn"},
    )
    assert "not safe for concurrent commits" in asked.stderr  # the user's own filter wins


def test_a_zarr_v3_slice_starts_a_cube_without_numpy_warnings(tmp_path):
    dataset = sample_slice("2024-01-01", shape=(3, 6))
    dataset["time"] = dataset["time"].astype("datetime64[ns]")
    dataset.time.encoding = {"units": "days since 1800-01-01", "dtype": "float64"}
    path = tmp_path / "slice.zarr"
    dataset.to_zarr(path, zarr_format=3, consolidated=False)  # time stored with a NaN fill value
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert versioncube.append([path], target_dir=str(tmp_path / "cube")) == 1


@pytest.mark.slow
def test_variables_and_dims_come_in_the_same_order_on_every_run(tmp_path):
    target = tmp_path / "cube"
    variables = ("tas", "psl", "pr")
    versioncube.append(
        [sample_slice("2024-01-01", shape=(3, 6), variables=variables)], target_dir=str(target)
    )
    script = (
        f"import versioncube; ds = versioncube.open_dataset({str(target)!r}); "
        "print(list(ds.variables), list(ds.dims))"
    )
    seen = {
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True).stdout
        for _ in range(6)
    }
    assert seen == {"['pr', 'psl', 'tas', 'time', 'lat', 'lon'] ['time', 'lat', 'lon']\n"}
    info = open_cube(target).info()
    assert list(info.dims) == ["time", "lat", "lon"]
