"""The cube remembers its target outline and refuses a configuration that contradicts it;
append_step and per-variable settings are parsed and merged."""

from __future__ import annotations

import numpy as np
import pytest

import versioncube
from versioncube import open_cube
from versioncube.config.append_step import AppendStep
from versioncube.config.outline import TargetOutline
from versioncube.testing import tip

OUTLINE = {
    "append_step": "1D",
    "fixed_dims": {"lat": 6, "lon": 12},
    "excluded_variables": ["psl"],
    "variables": {
        "*": {"encoding": {"compressor": {"id": "zstd", "level": 3}}},
        "tas": {
            "encoding": {
                "dtype": "int16",
                "scale_factor": 0.01,
                "add_offset": 280.0,
                "fill_value": -32768,
            }
        },
    },
    "attrs": {"title": "Daily fields", "end": "{{ ds.time[-1] }}"},
    "attrs_update_mode": "update",
    "permit_eval": True,
}


def _three_variables(make, day):
    return make(day, variables=("tas", "pr", "psl"))


def test_the_outline_is_stored_and_later_runs_need_only_the_target(memory_target, small_slice):
    versioncube.append(
        [_three_variables(small_slice, "2024-01-01")], OUTLINE, target_dir=memory_target
    )

    stored = open_cube(memory_target).repository.get_metadata()["versioncube"]
    assert stored == {
        "schema": 1,
        "append_dim": "time",
        "included_variables": [],
        **OUTLINE,
    }

    later = _three_variables(small_slice, "2024-01-02").assign_attrs(note="second")
    assert versioncube.append([later], target_dir=memory_target) == 1
    cube = open_cube(memory_target).to_xarray()
    assert "psl" not in cube.variables  # excluded_variables, remembered
    assert cube.tas.encoding["dtype"] == np.dtype("int16")
    assert cube.attrs["end"] == "2024-01-02T00:00:00"  # evaluated again after the append
    assert cube.attrs["note"] == "second"  # attrs_update_mode "update", remembered
    with pytest.raises(versioncube.SliceValidationError, match="by 2D, but append_step is '1D'"):
        versioncube.append(
            [small_slice("2024-01-04", variables=("tas", "pr"))], target_dir=memory_target
        )


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"append_step": "2D"}, "append_step is '2D', but the cube at memory://"),
        ({"append_dim": "step"}, "append_dim is 'step', but the cube at memory://"),
        (
            {"variables": {"tas": {"encoding": {"scale_factor": 0.1}}}},
            "variables.tas.encoding.scale_factor is 0.1, but the cube at memory://",
        ),
        (
            {"variables": {"pr": {"encoding": {"dtype": "float64"}}}},
            "variables.pr is {'encoding': {'dtype': 'float64'}}, but the cube at memory://",
        ),
        ({"fixed_dims": {"lat": 7}}, "fixed_dims.lat is 7, but the cube at"),
        ({"attrs_update_mode": "replace"}, "attrs_update_mode is 'replace'"),
    ],
)
def test_a_contradicting_configuration_is_refused(given, message, memory_target, small_slice):
    versioncube.append(
        [_three_variables(small_slice, "2024-01-01")], OUTLINE, target_dir=memory_target
    )
    cube = open_cube(memory_target)
    before = tip(cube)

    with pytest.raises(versioncube.ConfigError) as raised:
        versioncube.append(
            [_three_variables(small_slice, "2024-01-02")], given, target_dir=memory_target
        )
    assert message in str(raised.value)
    assert "force_new starts it afresh" in str(raised.value)
    assert tip(cube) == before


def test_a_configuration_that_repeats_the_outline_is_accepted(memory_target, small_slice):
    versioncube.append(
        [_three_variables(small_slice, "2024-01-01")], OUTLINE, target_dir=memory_target
    )
    subset = {"append_step": "1D", "variables": {"tas": {"encoding": {"dtype": "int16"}}}}
    assert (
        versioncube.append(
            [_three_variables(small_slice, "2024-01-02")], subset, target_dir=memory_target
        )
        == 1
    )
    assert (
        versioncube.append(
            [_three_variables(small_slice, "2024-01-03")], OUTLINE, target_dir=memory_target
        )
        == 1
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, AppendStep(1)),
        ("+", AppendStep(1)),
        ("-", AppendStep(-1, text="-")),
        ("1D", AppendStep(1, 1, "D", "1D")),
        ("D", AppendStep(1, 1, "D", "D")),
        ("-6h", AppendStep(-1, -6, "h", "-6h")),
        ("30m", AppendStep(1, 30, "m", "30m")),
        (2.5, AppendStep(1, 2.5, None, "2.5")),
        (-3, AppendStep(-1, -3, None, "-3")),
    ],
)
def test_append_step_parsing(value, expected):
    assert AppendStep.parse(value) == expected


@pytest.mark.parametrize("value", ["", "0D", "0M", "1Q", "1 day", 0, float("nan"), True])
def test_append_step_refusals(value):
    with pytest.raises(ValueError, match="append_step"):
        AppendStep.parse(value)


def test_variable_settings_merge_star_with_their_own():
    outline = TargetOutline(
        variables={
            "*": {"encoding": {"chunks": None, "dtype": "float32"}, "attrs": {"a": 1}},
            "tas": {"encoding": {"chunks": [1, 2, 3]}, "attrs": {"b": 2}},
        }
    )
    assert outline.variable("tas") == {
        "encoding": {"chunks": [1, 2, 3], "dtype": "float32"},
        "attrs": {"a": 1, "b": 2},
    }
    assert outline.variable("pr") == outline.variables["*"]
    assert outline.converts("pr")
    assert not TargetOutline().converts("pr")
