"""Slice sources and in-memory slices: how they are called, named, closed and persisted."""

from __future__ import annotations

import dask.array
import numpy as np
import pytest
import xarray as xr

import versioncube
from versioncube import open_cube
from versioncube.config import Config
from versioncube.errors import ConfigError
from versioncube.slices.identity import slice_ref
from versioncube.slices.options import SliceOptions
from versioncube.slices.sources import Context, call_source, resolve_source, source_arguments


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("a.nc", (("a.nc",), {})),
        (["a.nc", 3], (("a.nc", 3), {})),
        ({"path": "a.nc"}, ((), {"path": "a.nc"})),
        ((["a.nc"], {"rows": 2}), (("a.nc",), {"rows": 2})),
        ((("a.nc",), {}), (("a.nc",), {})),
    ],
)
def test_slice_items_become_source_arguments(item, expected):
    assert source_arguments(item) == expected


@pytest.mark.parametrize("item", [("a.nc",), ("a.nc", "b.nc"), (["a.nc"], ["rows"])])
def test_malformed_tuple_items_are_refused(item):
    with pytest.raises(TypeError, match=r"\(args, kwargs\)"):
        source_arguments(item)


def test_ctx_is_passed_first_or_by_keyword_and_item_kwargs_win():
    ctx = Context(Config(extra={"k": 1}))

    def first(ctx, path, rows=0):
        return ctx, path, rows

    def keyword(path, rows=0, ctx=None):
        return ctx, path, rows

    def without(path, rows=0):
        return path, rows

    assert call_source(first, (["a"], {"rows": 2}), {"rows": 1}, ctx) == (ctx, "a", 2)
    assert call_source(keyword, "a", {"rows": 1}, ctx) == (ctx, "a", 1)
    assert call_source(without, ["a", 5], {}, ctx) == ("a", 5)


def test_dotted_names_resolve_and_bad_ones_are_config_errors():
    assert resolve_source("os.path.join") is __import__("os").path.join
    with pytest.raises(ConfigError, match="'slice_source' is 'no_such_module.f', which cannot"):
        resolve_source("no_such_module.f")
    with pytest.raises(ConfigError, match="'slice_source' is 'os.sep', a str, not a function"):
        resolve_source("os.sep")


def test_source_identities_name_the_source_and_its_arguments(small_slice):
    def crop(path, bbox=None):
        return path

    options = SliceOptions(source=crop)
    ref = slice_ref((["data/a.nc"], {"bbox": [0, 1]}), options)
    assert ref.identity == f"source:{__name__}.{crop.__qualname__}('data/a.nc', bbox=[0, 1])"
    assert ref.name == "crop('data/a.nc', bbox=[0, 1])"
    assert slice_ref("data/a.nc", options).name == "a.nc"
    dataset = small_slice("2024-01-01")
    by_content = slice_ref(dataset, options)
    assert by_content.identity == slice_ref(small_slice("2024-01-01"), options).identity
    assert "xxh3:" in by_content.identity


class CountingSource(versioncube.SliceSource):
    """A source whose dask graph counts how often it is computed."""

    computed = 0

    def __init__(self, day):
        self.day = day

    def get_dataset(self):
        from versioncube.samples import sample_slice

        def block(values):
            CountingSource.computed += 1
            return values

        dataset = sample_slice(self.day, shape=(6, 12))
        tas = dask.array.from_array(dataset.tas.values, chunks=(1, 3, 12))
        counted = tas.map_blocks(block, dtype=tas.dtype, meta=np.array((), tas.dtype))
        return dataset.assign(tas=dataset.tas.copy(data=counted))


@pytest.mark.parametrize("persist", [True, False])
def test_in_memory_slices_are_computed_once(persist, tmp_path, memory_target, small_slice):
    temp_dir = tmp_path / "temp"
    temp_dir.mkdir()
    CountingSource.computed = 0

    count = versioncube.append(
        ["2024-01-01", "2024-01-02"],
        target_dir=memory_target,
        slice_source=CountingSource,
        persist_mem_slices=persist,
        temp_dir=str(temp_dir),
        variables={"tas": {"encoding": {"chunks": [1, 2, 12]}}},  # not aligned with dask's
    )

    assert count == 2
    assert CountingSource.computed == 2 * 2  # each dask block once per slice
    assert list(temp_dir.iterdir()) == []
    expected = xr.concat([small_slice("2024-01-01"), small_slice("2024-01-02")], "time")
    xr.testing.assert_identical(open_cube(memory_target).to_xarray().load(), expected)
