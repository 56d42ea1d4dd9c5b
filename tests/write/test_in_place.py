"""The in-place append writes exactly what xarray's append path writes."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

import versioncube
from versioncube import open_cube
from versioncube.versions.ledger import LEDGER_GROUP, SLICES_ARRAY
from versioncube.write.in_place import can_append_in_place

CONFIG = {
    "variables": {
        "tas": {"encoding": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 273.15,
                             "_FillValue": -32768}},
        "pr": {"encoding": {"fill_value": "NaN"}},
    },
}  # fmt: skip


def _slices(small_slice):
    slices = []
    for index, day in enumerate(pd.date_range("2024-01-01", periods=4, freq="6h")):
        item = small_slice(day)
        item["pr"][0, index, :] = np.nan  # missing values, packed and not
        item["tas"][0, :, index] = np.nan
        item = item.assign_coords(
            time_bounds=(("time", "bound"), np.array([[day, day + pd.Timedelta(hours=6)]]))
        )
        slices.append(item.assign_attrs(history=f"slice {index}"))
    return slices


def _arrays(target: str) -> dict[str, np.ndarray]:
    store = open_cube(target).repository.readonly_session(branch="main").store
    group = zarr.open_group(store, mode="r")
    return {name: array[...] for name, array in group.arrays()}


@pytest.mark.parametrize("attrs_update_mode", ["keep", "replace"])
def test_in_place_and_xarray_appends_store_the_same(small_slice, attrs_update_mode):
    slices = _slices(small_slice)
    in_memory, via_dask = f"memory://{uuid.uuid4().hex}", f"memory://{uuid.uuid4().hex}"
    settings = {**CONFIG, "attrs_update_mode": attrs_update_mode}
    versioncube.append(slices, settings, target_dir=in_memory)
    versioncube.append([s.chunk() for s in slices], settings, target_dir=via_dask)
    assert can_append_in_place(slices[1]) and not can_append_in_place(slices[1].chunk())

    fast, reference = _arrays(in_memory), _arrays(via_dask)
    assert fast.keys() == reference.keys()
    for name in fast:
        np.testing.assert_array_equal(fast[name], reference[name], err_msg=name)
    xr.testing.assert_identical(
        open_cube(in_memory).to_xarray().load(), open_cube(via_dask).to_xarray().load()
    )
    expected_history = "slice 0" if attrs_update_mode == "keep" else "slice 3"
    assert open_cube(in_memory).to_xarray().attrs["history"] == expected_history


def test_labels_coarser_than_the_cubes_time_units_are_stored_exactly(memory_target, small_slice):
    """A cube in milliseconds gets a slice whose labels are datetime64[s] (as pandas makes
    them): xarray's own encoder would store NaT for every label."""
    first = small_slice(np.array(["2024-01-01T00:00:00.500"], dtype="datetime64[ns]"))
    second = small_slice("2024-01-02")
    second = second.assign_coords(time=second["time"].values.astype("datetime64[s]"))
    cube = open_cube(memory_target)
    cube.append(first)
    assert "milliseconds since" in cube.to_xarray()["time"].encoding["units"]

    cube.append(second)

    labels = cube.to_xarray()["time"].values
    assert list(labels) == [
        np.datetime64("2024-01-01T00:00:00.500", "ns"),
        np.datetime64("2024-01-02", "ns"),
    ]


def test_other_writes_of_the_session_are_opened_before_any_write_starts(
    memory_target, small_slice, monkeypatch
):
    """Zarr names the store when it reads metadata, and Icechunk's store then blocks Zarr's
    event loop while a write of the same session is under way: the slice ledger's metadata is
    read before the first write (seen as a hang after some hundred appends)."""
    import icechunk

    from versioncube.versions import ledger

    writes: list[str] = []
    opened_after: list[int] = []
    original_set, original_open = icechunk.IcechunkStore.set, ledger.LedgerWrite.open

    async def set_(self, key, value):
        writes.append(key)
        return await original_set(self, key, value)

    async def open_(self):
        opened_after.append(len(writes))
        await original_open(self)

    cube = open_cube(memory_target)
    cube.append(small_slice("2024-01-01"))
    monkeypatch.setattr(icechunk.IcechunkStore, "set", set_)
    monkeypatch.setattr(ledger.LedgerWrite, "open", open_)

    cube.append(small_slice("2024-01-02"))

    assert opened_after == [0]  # opened before any write of the session
    assert any(key.startswith(".versioncube/") for key in writes)  # and written with them


def _chunk_keys(target: str) -> set[str]:
    store = open_cube(target).repository.readonly_session(branch="main").store

    async def listed() -> set[str]:
        return {key async for key in store.list() if key.startswith(("tas/c/", "pr/c/"))}

    return zarr.core.sync.sync(listed())


def test_chunks_that_hold_only_the_fill_value_are_left_out_as_zarr_leaves_them(small_slice):
    """The in-place append skips Zarr's scan for all-fill chunks only where one element per
    chunk shows there are none: the chunks stored are the ones xarray's path stores."""
    chunked = {"chunks": [2, 3, 4]}  # slices of one step: every other one starts mid-chunk
    config = {
        "variables": {
            "tas": {"encoding": {**chunked, "dtype": "int16", "_FillValue": -32768}},
            "pr": {"encoding": {**chunked, "fill_value": "NaN"}},
        },
    }
    slices = []
    for index, day in enumerate(pd.date_range("2024-01-01", periods=5, freq="6h")):
        item = small_slice(day)
        if index == 1:  # the 2nd row of chunks whose 1st row holds values
            item["pr"][0, :3, :4] = np.nan
            item["tas"][0, :3, :4] = np.nan
        if index == 2:  # every chunk all fill, then its 2nd row (3) is all fill in one chunk
            item["pr"][0, :, :] = np.nan
        if index == 3:
            item["pr"][0, :3, :4] = np.nan
        if index == 4:  # a chunk's first element is fill, the rest is not
            item["pr"][0, 0, 0] = np.nan
            item["tas"][0, 0, 0] = np.nan
        slices.append(item)
    in_memory, via_dask = f"memory://{uuid.uuid4().hex}", f"memory://{uuid.uuid4().hex}"
    versioncube.append(slices, config, target_dir=in_memory)
    versioncube.append([s.chunk() for s in slices], config, target_dir=via_dask)

    stored = _chunk_keys(in_memory)
    assert stored == _chunk_keys(via_dask)
    assert {"pr/c/0/0/0", "tas/c/0/0/0", "pr/c/2/0/0", "tas/c/2/0/0"} <= stored
    assert "pr/c/1/0/0" not in stored  # rows 2 and 3 of it: all fill
    assert "pr/c/1/0/1" in stored
    xr.testing.assert_identical(
        open_cube(in_memory).to_xarray().load(), open_cube(via_dask).to_xarray().load()
    )


def _fresh_nodes(session) -> tuple[dict, dict]:
    group = zarr.open_group(session.store, mode="r")
    return dict(group.attrs), {name: array.metadata for name, array in group.arrays()}


def test_a_session_on_the_last_commit_opens_its_arrays_and_ledger_as_that_commit_stores_them(
    memory_target, small_slice
):
    """The next append opens the group and arrays its own commit wrote without reading
    them: their metadata is what a fresh read of that commit gives."""
    cube = open_cube(memory_target, config={"attrs_update_mode": "replace"})
    cube.append(small_slice("2023-12-31"))  # creates the cube
    for index, day in enumerate(pd.date_range("2024-01-01", periods=3), start=1):
        cube.append(small_slice(day).assign_attrs(history=f"slice {index}"))

        session = cube.repository.writable_session("main")
        kept = cube._appender.kept_outline(session)
        assert kept is not None and kept.nodes is not None
        assert kept.nodes.in_session_of(session.store)
        attrs, metadata = _fresh_nodes(session)
        assert dict(kept.nodes.group.attrs) == attrs
        assert attrs["history"] == f"slice {index}"
        for name, array in kept.nodes.arrays.items():
            assert array.metadata == metadata[name], name
        assert kept.nodes.arrays["tas"].shape[0] == index + 1

        ledger = cube._appender.ledger_at(session.snapshot_id, session.store)
        assert ledger._committed is not None
        known = ledger._committed.opened_in(session.store)
        fresh = zarr.open_group(session.store, path=LEDGER_GROUP, mode="r")
        assert known.group.metadata == fresh.metadata
        assert known.group.attrs["rows"] == index + 1
        assert known.arrays[SLICES_ARRAY].metadata == fresh[SLICES_ARRAY].metadata


def test_an_append_that_fails_after_growing_the_arrays_leaves_the_next_one_exact(
    memory_target, small_slice, monkeypatch
):
    """The append grows the arrays and sets new attributes, then fails: the next append
    on the same commit starts from what that commit stores, not from what the failed one
    changed (no row of fill values, the new attributes written)."""
    from versioncube.write import in_place

    days = pd.date_range("2024-01-01", periods=4)
    slices = [small_slice(day).assign_attrs(history=f"slice {i}") for i, day in enumerate(days)]
    cube = open_cube(memory_target, config={"attrs_update_mode": "replace"})
    cube.append(slices[0])  # creates the cube
    cube.append(slices[1])  # the next session starts from what this commit wrote
    tip = cube.repository.lookup_branch("main")
    set_attrs = in_place._set_attrs

    async def set_then_fail(group, attrs):
        await set_attrs(group, attrs)
        await asyncio.sleep(0.2)  # the rows are appended meanwhile
        raise OSError("no space left on device")

    monkeypatch.setattr(in_place, "_set_attrs", set_then_fail)
    with pytest.raises(Exception, match="no space left"):
        cube.append(slices[2])
    assert cube.repository.lookup_branch("main") == tip
    monkeypatch.setattr(in_place, "_set_attrs", set_attrs)

    cube.append(slices[2])
    session = cube.repository.readonly_session(branch="main")
    assert _fresh_nodes(session)[0]["history"] == "slice 2"
    cube.append(slices[3])

    stored = cube.to_xarray().load()
    xr.testing.assert_allclose(stored, xr.concat(slices, "time").assign_attrs(history="slice 3"))
    assert len(list(cube.repository.ancestry(branch="main"))) == 5
