"""Writes by label (upsert, time_series, replace, insert) and deletes: one commit each, the
result equal to what plain xarray builds, rollback restoring the previous version exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import versioncube
import versioncube.api
from versioncube import open_cube
from versioncube.errors import LabelRangeError, SliceValidationError
from versioncube.testing import commits, tip
from versioncube.versions.record import CommitRecord

DAYS = pd.date_range("2024-01-01", periods=72, freq="D")
GAP = DAYS[40:42]  # the cube lacks these two days

LAYOUTS = {
    "chunk 1": {"chunks": [1, 6, 12]},
    "chunk 24": {"chunks": [24, 6, 12]},
    "sharded": {"chunks": [1, 6, 12], "shards": [24, 6, 12]},
}


def layout_config(kind: str) -> dict:
    encoding = LAYOUTS[kind]
    return {"variables": {name: {"encoding": dict(encoding)} for name in ("tas", "pr")}}


@pytest.fixture(params=list(LAYOUTS))
def cube_and_data(request, memory_target, small_slice):
    """A cube of 70 days (days 40 and 41 missing), appended in three slices, and every day's
    data (what later slices are cut from)."""
    full = small_slice(DAYS)
    kept = full.drop_sel(time=GAP)
    parts = [
        kept.isel(time=slice(0, 30)),
        kept.isel(time=slice(30, 50)),
        kept.isel(time=slice(50, None)),
    ]
    config = layout_config(request.param)
    versioncube.append(parts, target_dir=memory_target, **config)
    cube = open_cube(memory_target, config=config)
    return cube, full


def changed(dataset: xr.Dataset, by: float = 1.5) -> xr.Dataset:
    """The same labels with other values (a re-issued file)."""
    new = dataset.copy(deep=True)
    new["tas"] = new.tas + by
    new["pr"] = new.pr * 2
    return new


def expected(before: xr.Dataset, new: xr.Dataset, drop: pd.DatetimeIndex | None = None):
    """Plain xarray: the old rows not overwritten (nor in ``drop``), then the new, in order."""
    kept = before.drop_sel(time=new.time.values, errors="ignore")
    if drop is not None:
        kept = kept.drop_sel(time=drop, errors="ignore")
    return xr.concat([kept, new], "time").sortby("time")


def along_time(datasets: list[xr.Dataset]) -> xr.Dataset:
    """Concatenated along time, variables without it (grid bounds) kept as they are."""
    return xr.concat(datasets, "time", data_vars="minimal", coords="minimal", compat="override")


def check_one_commit_and_rollback(cube, old_tip, before, result, expected_dataset):
    """The write is one commit whose data equals ``expected_dataset``; rolling back restores
    the previous version exactly (data and snapshot)."""
    assert result.status == "written"
    history = commits(cube)
    assert history[1].id == old_tip  # exactly one new commit on top of the old tip
    xr.testing.assert_identical(cube.to_xarray().load(), expected_dataset)
    report = cube.verify()
    assert report.ok, report.problems
    cube.rollback(to="main~1")
    assert tip(cube) == old_tip
    xr.testing.assert_identical(cube.to_xarray().load(), before)


def test_upsert_overwrites_present_labels_and_inserts_the_others(cube_and_data):
    cube, full = cube_and_data
    before, old_tip = cube.to_xarray().load(), tip(cube)
    new = changed(full.sel(time=slice("2024-02-05", "2024-02-11")))  # 5 present, 2 in the gap

    result = cube.write(new, mode="upsert")

    assert result.record.counts == {"replaced": 5, "inserted": 2}
    assert "(5 replaced, 2 inserted)" in result.describe()
    check_one_commit_and_rollback(cube, old_tip, before, result, expected(before, new))


def test_upsert_appends_labels_after_the_last(cube_and_data):
    cube, full = cube_and_data
    before, old_tip = cube.to_xarray().load(), tip(cube)
    later = full.isel(time=slice(68, 72))
    extra = later.assign_coords(time=later.time + np.timedelta64(4, "D"))
    new = changed(xr.concat([later, extra], "time"))

    result = cube.write(new, mode="upsert")

    assert result.record.counts == {"replaced": 4, "appended": 4}
    check_one_commit_and_rollback(cube, old_tip, before, result, expected(before, new))


def test_time_series_replaces_the_whole_window(cube_and_data):
    cube, full = cube_and_data
    before, old_tip = cube.to_xarray().load(), tip(cube)
    # three labels spanning 2024-01-11 .. 2024-01-20: the seven others in the window go
    new = changed(full.sel(time=["2024-01-11", "2024-01-15", "2024-01-20"]))

    result = cube.write(new, mode="time_series")

    window = before.sel(time=slice("2024-01-11", "2024-01-20")).time.values
    assert result.record.counts == {"replaced": 3, "removed": 7}
    check_one_commit_and_rollback(cube, old_tip, before, result, expected(before, new, window))


def test_replace_rewrites_existing_labels_without_moving_rows(cube_and_data):
    cube, full = cube_and_data
    before, old_tip = cube.to_xarray().load(), tip(cube)
    new = changed(full.sel(time=slice("2024-01-20", "2024-01-29")))

    result = cube.write(new, mode="replace")

    assert result.record.counts == {"replaced": 10}
    assert result.chunks_moved == 0
    assert result.record.size == before.sizes["time"]
    check_one_commit_and_rollback(cube, old_tip, before, result, expected(before, new))


def test_insert_fills_a_gap(cube_and_data):
    cube, full = cube_and_data
    before, old_tip = cube.to_xarray().load(), tip(cube)
    new = full.sel(time=GAP)

    result = cube.write(new, mode="insert")

    assert result.record.counts == {"inserted": 2}
    check_one_commit_and_rollback(cube, old_tip, before, result, full)


@pytest.mark.parametrize(
    "labels", ["2024-01-25..2024-02-17", "2024-01-03..2024-01-05", "2024-03-05"]
)
def test_delete_removes_a_label_range(cube_and_data, labels):
    cube, _ = cube_and_data
    before, old_tip = cube.to_xarray().load(), tip(cube)
    first, _, last = labels.partition("..")
    gone = before.sel(time=slice(first, last or first)).time.values

    result = cube.delete(labels)

    assert result.record.counts == {"removed": gone.size}
    check_one_commit_and_rollback(cube, old_tip, before, result, before.drop_sel(time=gone))


def test_whole_chunk_shifts_move_references_instead_of_copying(memory_target, small_slice):
    config = layout_config("chunk 1")
    full = small_slice(DAYS)
    versioncube.append(full.drop_sel(time=GAP), target_dir=memory_target, **config)
    cube = open_cube(memory_target)

    result = cube.write(full.sel(time=GAP), mode="insert")

    # the two new rows of each variable and the label chunk are written; the 30 later rows of
    # each variable are moved
    assert result.chunks_written == 2 * 2 + 1
    assert result.chunks_moved == 2 * 30
    deleted = cube.delete("2024-01-02..2024-01-03")
    assert deleted.chunks_written == 1  # only the label coordinate's chunk
    assert deleted.chunks_moved == 2 * 69  # rows 3..71 move up by two


def test_one_commit_per_operation_in_the_log(cube_and_data):
    cube, full = cube_and_data
    cube.write(changed(full.sel(time=slice("2024-02-05", "2024-02-11"))), mode="upsert")
    cube.delete("2024-01-01..2024-01-02")

    log = cube.log(2)
    assert [entry.operation for entry in log] == ["delete", "upsert"]
    assert log[1].labels == "time 2024-02-05 .. 2024-02-11 (5 replaced, 2 inserted)"
    assert log[0].labels == "time 2024-01-01 .. 2024-01-02 (2 removed)"
    record = CommitRecord.of_snapshot(commits(cube)[0], "time")
    assert record is not None and record.moves_rows and record.size == 70


# -- refusals leave the tip where it was -----------------------------------------------------


@pytest.fixture
def small_cube(memory_target, small_slice):
    versioncube.append(small_slice(DAYS[:10]), target_dir=memory_target)
    return open_cube(memory_target)


@pytest.mark.parametrize(
    ("mode", "labels", "message"),
    [
        ("replace", DAYS[8:12], "2 time labels (2024-01-11, 2024-01-12) not in the cube"),
        ("insert", DAYS[9:11], "1 time label (2024-01-10) in the cube already"),
    ],
)
def test_mode_refusals_leave_the_tip_unchanged(small_cube, small_slice, mode, labels, message):
    before = tip(small_cube)
    with pytest.raises(SliceValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        small_cube.write(small_slice(labels), mode=mode)
    assert tip(small_cube) == before


def test_a_slice_that_does_not_fit_is_refused_as_on_append(small_cube, small_slice):
    before = tip(small_cube)
    with pytest.raises(SliceValidationError, match="lacks variable"):
        small_cube.write(small_slice(DAYS[3:5], variables=("tas",)), mode="upsert")
    assert tip(small_cube) == before


def test_unsorted_slice_labels_are_refused(small_cube, small_slice):
    with pytest.raises(SliceValidationError, match="not strictly increasing"):
        small_cube.write(small_slice([DAYS[4], DAYS[2]]), mode="upsert")


def test_deleting_every_label_is_refused(small_cube):
    before = tip(small_cube)
    with pytest.raises(LabelRangeError, match="would remove every label"):
        small_cube.delete("2023-01-01..2025-01-01")
    with pytest.raises(LabelRangeError, match="not a label range"):
        small_cube.delete("2024-01-01..")
    assert tip(small_cube) == before


def test_deleting_a_range_without_labels_commits_nothing(small_cube):
    before = tip(small_cube)
    result = small_cube.delete("2030-01-01..2030-02-01")
    assert result.status == "nothing to delete"
    assert tip(small_cube) == before


def test_append_step_allows_filling_gaps_only(memory_target, small_slice):
    versioncube.append(small_slice(DAYS[:5]), target_dir=memory_target, append_step="1D")
    versioncube.append(small_slice(DAYS[5:10]), target_dir=memory_target)
    cube = open_cube(memory_target)
    before = tip(cube)
    with pytest.raises(SliceValidationError, match="append_step is '1D'"):
        cube.delete("2024-01-03")
    assert tip(cube) == before
    cube.write(small_slice(DAYS[2:4]), mode="replace")  # no neighbour changes
    with pytest.raises(SliceValidationError, match="append_step is '1D'"):
        cube.write(small_slice(DAYS[12]), mode="upsert")  # would leave a gap after the last


def test_a_cube_without_labels_along_the_dimension_is_refused(memory_target, small_slice):
    # no cube at all yet
    with pytest.raises(versioncube.CubeNotFoundError, match="append its first slice"):
        open_cube(memory_target).write(small_slice(DAYS[0]), mode="upsert")


# -- the ledger: re-runs are no-ops, deleted slices can come back ----------------------------


def test_rewriting_the_same_slice_is_a_no_op(small_cube, small_slice):
    new = changed(small_slice(DAYS[3:5]))
    assert small_cube.write(new, mode="replace").status == "written"
    before = tip(small_cube)

    again = small_cube.write(new, mode="replace")

    assert again.status == "skipped" and "already" in again.describe()
    assert tip(small_cube) == before


def test_appending_again_after_a_delete_is_not_refused(memory_target, small_slice):
    slices = [small_slice(day) for day in DAYS[:6]]
    versioncube.append(slices, target_dir=memory_target)
    cube = open_cube(memory_target)
    cube.delete(f"{DAYS[3].date()}..{DAYS[5].date()}")

    assert versioncube.append(slices, target_dir=memory_target) == 3

    xr.testing.assert_identical(cube.to_xarray().load(), xr.concat(slices, "time"))
    assert cube.verify().ok


def test_ledger_follows_moved_rows(memory_target, small_slice):
    slices = [small_slice(DAYS[i : i + 2]) for i in (0, 2, 6, 8)]  # days 4 and 5 missing
    versioncube.append(slices, target_dir=memory_target)
    cube = open_cube(memory_target)
    cube.write(small_slice(DAYS[4:6]), mode="insert")
    cube.delete(f"{DAYS[0].date()}")

    # every slice is held (where its rows are now): a re-run appends nothing
    assert versioncube.append(slices[1:], target_dir=memory_target) == 0
    assert cube.verify().ok
    # the first slice lost one of its two rows: it is still held
    assert versioncube.append(slices[:1], target_dir=memory_target) == 0


def test_a_changed_file_points_to_write_and_write_brings_it_in(tmp_path, daily_files):
    target = str(tmp_path / "cube")
    versioncube.append(daily_files, target_dir=target)
    path = daily_files[3]
    with xr.open_dataset(path) as opened:
        data = opened.load()
    data["tas"] = data.tas + 1
    data.to_netcdf(tmp_path / "reissued.nc")
    (tmp_path / "reissued.nc").replace(path)  # re-issued at the same path

    with pytest.raises(versioncube.SliceChangedError, match="write --mode replace"):
        versioncube.append(daily_files, target_dir=target)

    cube = open_cube(target)
    result = cube.write(str(path), mode="replace")
    assert result.status == "written"
    assert versioncube.append(daily_files, target_dir=target) == 0  # the new content is held
    assert cube.write(str(path), mode="replace").status == "skipped"
    xr.testing.assert_identical(cube.to_xarray().sel(time=data.time).load().tas, data.tas)


# -- encodings and attributes as on append ---------------------------------------------------


PACKED = {
    "variables": {
        "pr": {"encoding": {"dtype": "int16", "scale_factor": 0.01, "_FillValue": -32768}},
        "tas": {"encoding": {"chunks": [4, 6, 12]}},
    }
}


def test_packed_values_are_stored_as_an_append_stores_them(small_slice):
    full = small_slice(DAYS[:12])
    full["pr"][3, 0, 0] = np.nan
    written, appended = f"memory://w{id(full)}", f"memory://a{id(full)}"
    versioncube.append(full.drop_sel(time=DAYS[5:7]), target_dir=written, **PACKED)
    versioncube.append(full, target_dir=appended, **PACKED)

    open_cube(written).write(full.sel(time=DAYS[3:7]), mode="upsert")

    xr.testing.assert_identical(
        open_cube(written).to_xarray().load(), open_cube(appended).to_xarray().load()
    )


def test_a_slice_packed_differently_is_refused(tmp_path, memory_target, small_slice):
    """A raw (``decode_cf=False``) slice packed otherwise than the cube: refused, as on append,
    not silently re-scaled."""
    paths = []
    for day, scale in ((DAYS[0], 0.01), (DAYS[1], 0.01), (DAYS[1], 0.02)):
        dataset = small_slice(day)[["tas"]]
        dataset.tas.encoding = {"dtype": "int16", "scale_factor": scale, "_FillValue": -32768}
        paths.append(tmp_path / f"{day.date()}-{scale}.nc")
        dataset.to_netcdf(paths[-1])
    raw = [xr.open_dataset(path, decode_cf=False).load() for path in paths]
    versioncube.append(raw[:2], target_dir=memory_target)
    cube = open_cube(memory_target)
    before = tip(cube)

    with pytest.raises(SliceValidationError, match="packed with scale_factor 0.02"):
        cube.write(raw[2], mode="replace")

    assert tip(cube) == before


def test_attributes_follow_attrs_update_mode(memory_target, small_slice):
    versioncube.append(small_slice(DAYS[:4]), target_dir=memory_target, attrs_update_mode="update")
    new = small_slice(DAYS[1:2])
    new.attrs["history"] = "re-issued"
    open_cube(memory_target).write(new, mode="replace")
    assert open_cube(memory_target).to_xarray().attrs["history"] == "re-issued"


def test_write_mode_setting_and_api(memory_target, small_slice):
    versioncube.append(small_slice(DAYS[:4]), target_dir=memory_target)
    results = versioncube.api.write(
        [changed(small_slice(DAYS[1:2])), small_slice(DAYS[6])],
        target_dir=memory_target,
        write_mode="upsert",
    )
    assert [r.record.counts for r in results] == [{"replaced": 1}, {"appended": 1}]
    assert versioncube.delete(f"{DAYS[6].date()}", target_dir=memory_target).status == "written"
    assert open_cube(memory_target).to_xarray().sizes["time"] == 4


def test_results_show_as_text_json_and_html(small_cube, small_slice):
    result = small_cube.write(changed(small_slice(DAYS[2:4])), mode="upsert")
    data = result.to_json()
    assert data["record"]["counts"] == {"replaced": 2}
    assert data["chunks_written"] == result.chunks_written > 0
    assert "upsert" in result._repr_html_() and "2 replaced" in result._repr_html_()


# -- verify still finds damage ---------------------------------------------------------------


def test_verify_finds_labels_disordered_after_an_update(small_cube, small_slice):
    small_cube.write(small_slice(DAYS[12]), mode="upsert")
    session = small_cube.repository.writable_session("main")
    import zarr

    labels = zarr.open_group(session.store, mode="r+")["time"]
    labels[2], labels[3] = labels[3], labels[2]
    session.commit("tampered")

    report = small_cube.verify()

    assert not report.ok
    assert any("out of order" in problem for problem in report.problems)


# -- real data: the eofs example files, one file per step ------------------------------------


@pytest.mark.slow  # tens of real files
@pytest.mark.filterwarnings("ignore:Ambiguous reference date string")
@pytest.mark.parametrize("chunk", [1, 24])
def test_every_operation_on_real_slices(eofs_steps, tmp_path, chunk):
    from versioncube.testing.real_data import open_source

    source = open_source("sst_ndjfm_anom")
    paths = [str(path) for path in eofs_steps["sst_ndjfm_anom"][:36]]
    config = {"variables": {"sst": {"encoding": {"chunks": [chunk, 18, 30]}}}}
    target = str(tmp_path / "cube")
    versioncube.append(paths[:12] + paths[13:30], target_dir=target, **config)
    cube = open_cube(target)

    def step(operation, expected_dataset, *arguments, **options):
        before, old_tip = cube.to_xarray().load(), tip(cube)
        run = getattr(cube, operation)
        result = run(*arguments, **options)
        check_one_commit_and_rollback(cube, old_tip, before, result, expected_dataset)
        assert run(*arguments, **options).status == "written"  # again, to go on from it
        return result

    # a late file for the gap
    step("write", source.isel(time=slice(0, 30)), paths[12], mode="insert")
    # re-issued files: two replaced, four new at the end
    reissued = source.isel(time=slice(28, 34)).copy(deep=True)
    reissued["sst"] = reissued.sst + 0.5
    upserted = along_time([source.isel(time=slice(0, 28)), reissued])
    result = step("write", upserted, reissued, mode="upsert")
    assert result.record.counts == {"replaced": 2, "appended": 4}
    # a window of three steps becomes two
    window = upserted.isel(time=[14, 16])
    kept = upserted.drop_sel(time=upserted.time.values[14:17])
    step("write", along_time([kept, window]).sortby("time"), window, mode="time_series")
    # bad steps go
    labels = f"{str(source.time.values[3])[:10]}..{str(source.time.values[5])[:10]}"
    current = cube.to_xarray().load()
    step("delete", current.drop_sel(time=current.time.values[3:6]), labels)
    assert cube.verify().ok


def test_a_cube_of_decreasing_labels(memory_target, small_slice):
    days = DAYS[:8][::-1]
    versioncube.append(small_slice(days.drop(days[3])), target_dir=memory_target, append_step="-")
    cube = open_cube(memory_target)

    cube.write(small_slice(days[3]), mode="insert")
    xr.testing.assert_identical(cube.to_xarray().load(), small_slice(days))
    new = changed(small_slice(days[1:3]))
    cube.write(new, mode="upsert")
    cube.delete(f"{days[6].date()}..{days[5].date()}")

    expected_dataset = xr.concat(
        [small_slice(days[:1]), new, small_slice(days[3:5]), small_slice(days[7:])], "time"
    )
    xr.testing.assert_identical(cube.to_xarray().load(), expected_dataset)
    assert cube.verify().ok


def test_verify_finds_labels_that_differ_from_what_a_write_recorded(memory_target, small_slice):
    versioncube.append(small_slice(DAYS[:4]), target_dir=memory_target)
    versioncube.append(small_slice(DAYS[8:10]), target_dir=memory_target)
    cube = open_cube(memory_target)
    cube.write(small_slice(DAYS[4:6]), mode="insert")
    assert cube.verify().ok
    import zarr

    session = cube.repository.writable_session("main")
    labels = zarr.open_group(session.store, mode="r+")["time"]
    labels[5] = labels[5] + (labels[6] - labels[5]) // 2  # still in order, not the one written
    session.commit("another tool moved a label")

    report = cube.verify()

    assert any("recorded labels" in problem for problem in report.problems), report.problems


# -- another writer commits while a write is under way ---------------------------------------


def _slipping_in(monkeypatch, other_writer):
    """Let ``other_writer`` commit once, right after a write's session was opened (its commit
    then conflicts, and the write runs again on the new tip)."""
    import versioncube.write.updates as updates

    fired = []
    read = updates.read_outline

    def read_then_slip(*args, **kwargs):
        outline = read(*args, **kwargs)
        if not fired:
            fired.append(True)
            other_writer()
        return outline

    monkeypatch.setattr(updates, "read_outline", read_then_slip)
    return fired


def test_a_write_runs_again_on_the_new_tip(monkeypatch, small_cube, small_slice):
    other = open_cube(small_cube.target.uri)
    fired = _slipping_in(monkeypatch, lambda: other.append(small_slice(DAYS[10:12])))
    new = changed(small_slice(DAYS[4:6]))

    result = small_cube.write(new, mode="upsert")

    assert fired and result.status == "written"
    expected_dataset = expected(small_slice(DAYS[:12]), new)
    xr.testing.assert_identical(small_cube.to_xarray().load(), expected_dataset)
    assert len(commits(small_cube)) == 3 and small_cube.verify().ok


def test_a_write_is_validated_again_on_the_new_tip(monkeypatch, small_cube, small_slice):
    other = open_cube(small_cube.target.uri)
    _slipping_in(monkeypatch, lambda: other.delete(f"{DAYS[5].date()}"))

    with pytest.raises(SliceValidationError, match="2024-01-06\\) not in the cube"):
        small_cube.write(changed(small_slice(DAYS[4:6])), mode="replace")

    assert tip(small_cube) == tip(other)  # the other writer's delete, nothing else


def test_diff_lists_what_writes_and_deletes_changed(small_cube, small_slice):
    new = changed(small_slice(DAYS[8:12]))  # 2 replaced, 2 appended
    small_cube.write(new, mode="upsert")
    small_cube.delete(f"{DAYS[1].date()}..{DAYS[2].date()}")

    data = small_cube.diff("main~2").to_json()

    assert [run["count"] for run in data["labels_added"]] == [2]
    assert [run["count"] for run in data["labels_removed"]] == [2]
    assert [run["count"] for run in data["labels_rewritten"]] == [2]
