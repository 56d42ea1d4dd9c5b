"""The zappend-compatible Python API: append(slices, config, **kwargs) and open_cube."""

from __future__ import annotations

import inspect
import json

import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.testing import commits


def test_append_signature_matches_zappend():
    parameters = list(inspect.signature(versioncube.append).parameters.values())
    assert [p.name for p in parameters] == ["slices", "config", "kwargs"]
    assert parameters[1].default is None
    assert parameters[2].kind is inspect.Parameter.VAR_KEYWORD


def test_append_with_config_file_and_kwargs(tmp_path, daily_files):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"target_dir": str(tmp_path / "ignored"), "append_dim": "time"}))

    count = versioncube.append(daily_files[:3], str(config), target_dir=str(tmp_path / "cube"))

    assert count == 3
    assert not (tmp_path / "ignored").exists()
    assert len(commits(open_cube(tmp_path / "cube"))) == 3


def test_append_accepts_generators_and_single_items(memory_target, small_slice):
    days = ("2024-01-01", "2024-01-02", "2024-01-03")
    assert (
        versioncube.append((small_slice(d) for d in days[:2]), {"target_dir": memory_target}) == 2
    )
    assert versioncube.append(small_slice(days[2]), target_dir=memory_target) == 1
    expected = xr.concat([small_slice(d) for d in days], "time")
    xr.testing.assert_identical(open_cube(memory_target).to_xarray().load(), expected)


def test_append_a_single_path(daily_files, tmp_path):
    assert versioncube.append(str(daily_files[0]), target_dir=str(tmp_path / "cube")) == 1


def test_open_cube_and_append_one_by_one(tmp_path, small_slice):
    cube = versioncube.open_cube(tmp_path / "cube")
    assert not cube.exists()
    result = cube.append(small_slice("2024-01-01"))
    assert result.status == "appended"
    assert result.record.operation == "create"
    assert cube.exists()
    assert repr(cube) == f"Cube({str(tmp_path / 'cube')!r}, branch='main')"


def test_to_xarray_is_lazy(memory_target, small_slice):
    versioncube.append([small_slice("2024-01-01")], target_dir=memory_target)
    dataset = open_cube(memory_target).to_xarray()
    assert dataset.tas.chunks is not None


def test_public_names_are_importable():
    for name in versioncube.__all__:
        assert getattr(versioncube, name) is not None
