"""add-variable and drop-variable: one commit each, the result equal to what xarray builds,
time travel to the old schema, rollback, refusals that leave the tip where it was."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from versioncube import SchemaError, SliceValidationError, open_cube
from versioncube.errors import CubeNotFoundError
from versioncube.store.commit import commit_change
from versioncube.testing import commits, tip
from versioncube.write.schema import AddVariableChange, given_data

DAYS = pd.date_range("2024-03-01", periods=30)
GIVEN = [1, 2, 3, 9, 26, 27, 28]  # days given values: runs and a single day


def _config(chunk: int) -> dict:
    encoding = {"encoding": {"chunks": [chunk, None, None]}}
    return {"variables": {"tas": encoding, "pr": encoding}}


@pytest.fixture(params=[1, 24], ids=["chunk1", "chunk24"])
def month(request, memory_target, small_slice):
    """A cube of 30 days, in time chunks of 1 or 24."""
    cube = open_cube(memory_target, config=_config(request.param))
    cube.append_all([small_slice(day) for day in DAYS])
    return cube


@pytest.fixture
def days(small_slice):
    return [small_slice(day) for day in DAYS[:10]]


@pytest.fixture
def grown(memory_target, days):
    """A cube of the first five days, one commit each."""
    cube = open_cube(memory_target)
    cube.append_all(days[:5])
    return cube


def _sst(small_slice, days) -> xr.DataArray:
    values = small_slice(DAYS[days]).tas - 273.15
    values.attrs = {"units": "degC", "long_name": "sea surface temperature"}
    return values


def _expected_with(before: xr.Dataset, sst: xr.DataArray) -> xr.Dataset:
    """What xarray builds: the variable over every day, NaN where not given."""
    full = xr.full_like(before.tas, np.nan).rename("sst")
    full.attrs = dict(sst.attrs)
    full.loc[{"time": sst.time}] = sst.values
    return before.assign(sst=full)


def test_add_variable_writes_given_steps_and_fills_the_rest(month, small_slice):
    before, before_tip = month.to_xarray().load(), tip(month)
    sst = _sst(small_slice, GIVEN)

    result = month.add_variable("sst", sst)

    assert len(commits(month)) == 31
    xr.testing.assert_identical(month.to_xarray().load(), _expected_with(before, sst))
    assert result.given == 7 and result.rows == 30
    assert result.describe().startswith(
        "added variable sst (time, lat, lon): 7 of 30 time steps given "
        "(time 2024-03-02 .. 2024-03-29), 23 filled with nan"
    )
    assert result.record.labels == ("2024-03-02", "2024-03-29") and result.record.steps == 7
    assert result.to_json()["record"]["variables"] == ["sst"]
    assert "add-variable sst" in result._repr_html_()
    stored = zarr.open_array(month.repository.readonly_session("main").store, path="sst")
    assert np.isnan(stored.fill_value) and "_FillValue" in stored.attrs
    assert np.isnan(month.to_xarray().sst.encoding["_FillValue"])
    assert stored.chunks[0] == month.to_xarray().tas.encoding["chunks"][0]  # the cube's chunks
    entry = month.log(1)[0]
    assert entry.operation == "add-variable" and entry.labels == "time 2024-03-02 .. 2024-03-29"
    # time travel: the version before still has the old schema
    xr.testing.assert_identical(month.to_xarray("~1").load(), before)
    assert month.verify().ok
    month.rollback("~1")
    assert tip(month) == before_tip
    xr.testing.assert_identical(month.to_xarray().load(), before)


def test_drop_variable_and_time_travel(month):
    before, before_tip = month.to_xarray().load(), tip(month)

    result = month.drop_variable("pr")

    assert result.describe().startswith("dropped variable pr (snapshot ")
    assert len(commits(month)) == 31
    xr.testing.assert_identical(month.to_xarray().load(), before.drop_vars("pr"))
    xr.testing.assert_identical(month.to_xarray("~1").load(), before)
    assert month.log(1)[0].operation == "drop-variable"
    assert month.verify().ok
    month.rollback("~1")
    assert tip(month) == before_tip
    xr.testing.assert_identical(month.to_xarray().load(), before)


def test_a_variable_without_the_append_dim_is_written_once(grown):
    before = grown.to_xarray().load()
    mask = (before.tas.isel(time=0, drop=True) > 280).astype("int8").rename("land")

    grown.add_variable("land", mask, fill_value=-1)

    xr.testing.assert_identical(
        grown.to_xarray().load(), before.assign(land=mask.astype("float32"))
    )
    assert "written whole" in grown.log(1)[0].message


def test_integers_need_a_fill_value_the_data_never_holds(grown):
    before_tip = tip(grown)
    counts = (grown.to_xarray().tas.isel(time=[1, 2]) > 280).astype("int16").rename("warm")

    with pytest.raises(SchemaError, match="stored as int16, which has no NaN: give a fill value"):
        grown.add_variable("warm", counts)
    with pytest.raises(SliceValidationError, match="holds its fill value 0 in .* choose a fill"):
        grown.add_variable("warm", counts, fill_value=0)
    with pytest.raises(SchemaError, match="fill value 0.5 cannot be stored .* whole number"):
        grown.add_variable("warm", counts, fill_value=0.5)
    assert tip(grown) == before_tip

    grown.add_variable("warm", counts, fill_value=-1)

    stored = zarr.open_array(grown.repository.readonly_session("main").store, path="warm")
    assert stored.fill_value == -1 and stored[0].min() == -1  # a row not given: the fill value
    read = grown.to_xarray().warm.load()
    assert read.isel(time=0).isnull().all()  # read as missing
    np.testing.assert_array_equal(read.isel(time=[1, 2]).values, counts.values)


def test_packing_is_applied_as_on_append(memory_target, small_slice):
    packed = {"dtype": "int16", "scale_factor": 0.01, "_FillValue": -32768}
    open_cube(memory_target).append_all([small_slice(day) for day in DAYS[:4]])
    cube = open_cube(memory_target, config={"variables": {"sst": {"encoding": packed}}})
    sst = _sst(small_slice, [1, 2])

    cube.add_variable("sst", sst)

    read = cube.to_xarray().sst.load()
    assert read.encoding["scale_factor"] == 0.01 and read.encoding["dtype"] == np.int16
    np.testing.assert_allclose(read.isel(time=[1, 2]).values, sst.values, atol=0.005)
    assert read.isel(time=[0, 3]).isnull().all()
    cube.drop_variable("sst")
    with pytest.raises(SchemaError, match="packed .* leave the fill value out or give nan"):
        cube.add_variable("sst", sst, fill_value=0)
    before_tip = tip(cube)
    with pytest.raises(SliceValidationError, match="sst"):
        cube.add_variable("sst", sst * 1000)  # beyond int16 at scale 0.01
    assert tip(cube) == before_tip


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda c, s: c.add_variable("tas", s), SchemaError, "already a variable of the cube"),
        (
            lambda c, s: c.add_variable("sst", s.assign_coords(time=s.time + pd.Timedelta("40D"))),
            SliceValidationError,
            "time label.* that the cube does not hold .* append those steps first",
        ),
        (
            lambda c, s: c.add_variable("sst", s.isel(lat=slice(0, 3))),
            SliceValidationError,
            "dimension 'lat' of variable 'sst' has size 3, the cube has 6",
        ),
        (
            lambda c, s: c.add_variable("sst", s.rename(lat="y")),
            SliceValidationError,
            r"dimension\(s\) \(y\) the cube does not have",
        ),
        (
            lambda c, s: c.add_variable("sst", s.assign_coords(lat=s.lat + 1)),
            SliceValidationError,
            "coordinate 'lat' differs from the cube's",
        ),
        (
            lambda c, s: c.add_variable("sst", xr.concat([s, s], "time")),
            SliceValidationError,
            "has time label 2024-03-02 twice",
        ),
        (
            lambda c, s: c.add_variable("sst", s.to_dataset(name="other")),
            SchemaError,
            "has no variable 'sst'",
        ),
        (lambda c, s: c.drop_variable("time"), SchemaError, "append coordinate .* cannot be"),
        (lambda c, s: c.drop_variable("lat"), SchemaError, "coordinate that pr, tas need"),
        (lambda c, s: c.drop_variable("sst"), SchemaError, "has no variable 'sst' to drop"),
    ],
)
def test_refusals_leave_the_tip_unchanged(grown, small_slice, change, error, match):
    before_tip = tip(grown)
    with pytest.raises(error, match=match):
        change(grown, _sst(small_slice, [1, 2]))
    assert tip(grown) == before_tip


def test_no_cube_yet(memory_target, small_slice):
    with pytest.raises(CubeNotFoundError, match="append slices first"):
        open_cube(memory_target).add_variable("sst", _sst(small_slice, [1]))


def test_later_appends_must_give_the_variable(grown, days, small_slice):
    grown.add_variable("sst", _sst(small_slice, [1, 2]))
    before_tip = tip(grown)

    with pytest.raises(SliceValidationError, match="lacks variable.*'sst'.* drop-variable"):
        grown.append(days[5])
    assert tip(grown) == before_tip

    grown.append(days[5].assign(sst=days[5].tas - 273.15))
    read = grown.to_xarray().sst.load()
    np.testing.assert_allclose(read.isel(time=5).values, (days[5].tas - 273.15).values[0])
    assert grown.verify().ok


def test_given_steps_from_files(grown, small_slice, tmp_path):
    paths = []
    for index in (3, 1):  # out of order: sorted by label
        path = tmp_path / f"sst-{index}.nc"
        _sst(small_slice, [index]).to_dataset(name="sst").to_netcdf(path)
        paths.append(path)

    grown.add_variable("sst", paths)

    read = grown.to_xarray().sst.load()
    assert read.isel(time=[0, 2, 4]).isnull().all()
    np.testing.assert_allclose(read.isel(time=[1, 3]).values, _sst(small_slice, [1, 3]).values)


def test_an_append_landing_first_is_covered_on_the_retry(grown, days, small_slice):
    """The change runs again on the new tip: the new variable covers the appended row too."""
    other = open_cube(grown.target)
    sst = _sst(small_slice, [1, 2])
    calls = []

    with given_data("sst", sst, "time") as (dataset, where):
        change = AddVariableChange(grown.store, "time", "sst", dataset, where, grown.outline, None)

        def racing(session):
            if not calls:
                other.append(days[5])  # lands between the session's start and its commit
            calls.append(session.snapshot_id)
            return change(session)

        committed = commit_change(grown.repository, grown.target, "main", racing)

    assert committed.attempts == 2 and len(set(calls)) == 2
    cube = grown.to_xarray()
    assert cube.sizes["time"] == 6 and cube.sst.sizes["time"] == 6
    assert cube.sst.isel(time=5).isnull().all()
    assert grown.verify().ok


def test_command_line(tmp_path, small_slice):
    from versioncube.testing.cli_checks import assert_one_line_error, run_cli

    target = str(tmp_path / "cube")
    open_cube(target).append_all([small_slice(day) for day in DAYS[:4]])
    path = tmp_path / "sst.nc"
    _sst(small_slice, [1, 2]).to_dataset(name="sst").to_netcdf(path)

    added = run_cli("add-variable", "-t", target, "sst", path)
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith("added variable sst (time, lat, lon): 2 of 4 time steps given")
    again = run_cli("add-variable", "-t", target, "sst", path)
    assert_one_line_error(again, "'sst' is already a variable of the cube")
    log = run_cli("log", "-t", target, "-n", "1").stdout
    assert "add-variable  sst" in log
    dropped = run_cli("drop-variable", "-t", target, "sst", "--json")
    assert dropped.exit_code == 0 and '"operation": "drop-variable"' in dropped.stdout
    refused = run_cli("drop-variable", "-t", target, "time")
    assert_one_line_error(refused, "'time' is the append coordinate")
    assert len(commits(open_cube(target))) == 6


@pytest.mark.slow  # real files, one commit each
@pytest.mark.parametrize("chunk", [1, 24])
def test_real_slices(eofs_steps, tmp_path, chunk):
    """A cube of the eofs sst files without sst; sst then added from ten of the same files."""
    from versioncube.testing.real_data import open_source

    paths = eofs_steps["sst_ndjfm_anom"]
    target = str(tmp_path / "cube")
    settings = {"excluded_variables": ["sst"], "variables": {"bounds_time": {"encoding": {}}}}
    encoding = {"encoding": {"chunks": [chunk, 2]}}
    settings["variables"]["bounds_time"] = encoding
    cube = open_cube(target, config=settings)
    cube.append_all(paths)
    before, before_tip = cube.to_xarray().load(), tip(cube)

    cube.add_variable("sst", paths[20:30])

    source = open_source("sst_ndjfm_anom")
    expected = source.copy()
    expected["sst"] = source.sst.where(source.time.isin(source.time[20:30]))
    xr.testing.assert_identical(cube.to_xarray().load(), expected)
    assert cube.to_xarray().sst.encoding["chunks"][0] == chunk
    assert len(commits(cube)) == len(paths) + 1
    cube.rollback("~1")
    assert tip(cube) == before_tip
    xr.testing.assert_identical(cube.to_xarray().load(), before)
