"""diff compares the two versions' data: right for any operation that made the second from the
first (here plain Icechunk/xarray/zarr writes stand in for updates, inserts and deletes), and
cheap for append-only histories (chunks neither side rewrote are not read)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr
from icechunk.xarray import to_icechunk

from versioncube import open_cube
from versioncube.versions import diff as diff_module

DAYS = pd.date_range("2024-03-01", periods=30)


@pytest.fixture(params=[1, 24], ids=["chunk1", "chunk24"])
def month(request, memory_target, small_slice):
    """A cube of 30 days, in time chunks of 1 or 24."""
    encoding = {"encoding": {"chunks": [request.param, None, None]}}
    cube = open_cube(memory_target, config={"variables": {"tas": encoding, "pr": encoding}})
    cube.append_all([small_slice(day) for day in DAYS])
    return cube


def _commit(cube, write) -> None:
    session = cube.repository.writable_session("main")
    write(session)
    session.commit("written by hand")


def _rewrite(cube, dataset: xr.Dataset) -> None:
    """A new version holding ``dataset`` (every array written anew)."""
    _commit(cube, lambda session: to_icechunk(dataset, session, mode="w"))


def test_a_region_rewrite_is_listed_with_the_size_of_the_change(month):
    before = month.to_xarray().load()
    changed = before.isel(time=[2, 3])[["tas"]].drop_vars(["lat", "lon"]) + 0.5
    _commit(
        month,
        lambda s: to_icechunk(changed.drop_vars("time"), s, region={"time": slice(2, 4)}),
    )

    changes = month.diff("~1")

    assert [str(span) for span in changes.labels_rewritten] == [
        "2024-03-03 .. 2024-03-04 (2 steps)"
    ]
    assert changes.labels_added == [] and changes.labels_removed == []
    assert [str(c) for c in changes.values_changed["tas"]] == [
        "2024-03-03 .. 2024-03-04 (2 steps): 144 cells changed, by at most 0.5"
    ]
    assert list(changes.values_changed) == ["tas"]
    assert "  ~ tas 2024-03-03 .. 2024-03-04 (2 steps): 144 cells" in changes.describe()
    payload = changes.to_json()
    assert payload["values_changed"]["tas"][0]["cells"] == 144
    assert payload["values_changed"]["tas"][0]["largest"] == 0.5


def test_deletes_and_inserts_are_found_by_label(month):
    before = month.to_xarray().load()
    _rewrite(month, before.drop_sel(time=DAYS[[5, 6, 20]]))  # a delete, anywhere

    deleted = month.diff("~1")

    assert [str(span) for span in deleted.labels_removed] == [
        "2024-03-06 .. 2024-03-07 (2 steps)",
        "2024-03-21 (1 step)",
    ]
    assert deleted.labels_added == [] and deleted.labels_rewritten == []
    assert deleted.values_changed == {}
    back = month.diff("main", "~1")  # the other way round: the labels come back
    assert [str(span) for span in back.labels_added] == [
        "2024-03-06 .. 2024-03-07 (2 steps)",
        "2024-03-21 (1 step)",
    ]
    # an insert in the middle plus a rewrite of a moved label (upsert-like), in one version
    current = month.to_xarray().load()
    late = before.sel(time=DAYS[[5]])
    upserted = xr.concat([current, late], "time").sortby("time")
    upserted["tas"].loc[{"time": DAYS[25]}] += 2
    _rewrite(month, upserted)

    changes = month.diff("~1")

    assert [str(span) for span in changes.labels_added] == ["2024-03-06 (1 step)"]
    assert [str(span) for span in changes.labels_rewritten] == ["2024-03-26 (1 step)"]
    assert [str(c) for c in changes.values_changed["tas"]] == [
        "2024-03-26 (1 step): 72 cells changed, by at most 2"
    ]


def test_rows_moved_in_place_are_compared_by_label(month):
    """A delete made in place (the tail moved up one row, the arrays shortened)."""
    before = month.to_xarray().load()

    def delete_row(session, row=10):
        group = zarr.open_group(session.store, mode="r+")
        for name in ("time", "tas", "pr"):
            array = group[name]
            size = array.shape[0]
            array[row : size - 1] = array[row + 1 : size]
            array.resize((size - 1, *array.shape[1:]))

    _commit(month, delete_row)
    xr.testing.assert_identical(month.to_xarray().load(), before.drop_isel(time=10))

    changes = month.diff("~1")

    assert [str(span) for span in changes.labels_removed] == ["2024-03-11 (1 step)"]
    assert changes.labels_rewritten == [] and changes.values_changed == {}


def test_added_and_dropped_variables(month, small_slice):
    month.add_variable("sst", small_slice(DAYS[[3]]).tas - 273.15)
    month.drop_variable("pr")

    changes = month.diff("~2")

    assert changes.variables_added == ["sst"] and changes.variables_removed == ["pr"]
    assert changes.labels_rewritten == [] and changes.values_changed == {}
    assert "+ variable sst" in changes.describe() and "- variable pr" in changes.describe()


def test_append_only_histories_read_no_values_but_the_last_chunk(month, small_slice, monkeypatch):
    compared = []
    original = diff_module._difference

    def counting(a, b):
        compared.append(a.shape)
        return original(a, b)

    monkeypatch.setattr(diff_module, "_difference", counting)
    month.append_all([small_slice(day) for day in pd.date_range("2024-03-31", periods=3)])

    changes = month.diff("~3")

    assert [str(span) for span in changes.labels_added] == ["2024-03-31 .. 2024-04-02 (3 steps)"]
    assert changes.labels_rewritten == []
    chunk = month.to_xarray().tas.encoding["chunks"][0]
    # c=1: nothing; c=24: the rows of the chunk the appends filled up, per variable
    assert len(compared) == (0 if chunk == 1 else 2 * (30 - 24))


def test_a_variable_without_the_append_dim_is_compared_whole(month):
    before = month.to_xarray().load()
    mask = (before.tas.isel(time=0, drop=True) > 280).astype("float32")
    month.add_variable("mask", mask)
    _commit(
        month,
        lambda s: to_icechunk(xr.Dataset({"mask": (mask * 0).variable}), s, mode="a"),
    )

    changes = month.diff("~1")

    assert [str(c) for c in changes.values_changed["mask"]] == [
        f"{int(mask.sum())} cells changed, by at most 1"
    ]
    assert np.isclose(changes.to_json()["values_changed"]["mask"][0]["largest"], 1)
