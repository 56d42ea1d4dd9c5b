"""How a big slice is planned for a dask cluster, without a cluster: its dask chunks aligned to
the cube's chunks, the memory bound per worker, and the refusal of chunks that do not fit."""

from __future__ import annotations

import pickle

import dask.array
import numpy as np
import pytest
import xarray as xr

from versioncube.errors import ClusterError, SliceChangedError, SliceValidationError
from versioncube.store.cluster import WORKER_BASE_BYTES
from versioncube.write.distributed import (
    MemoryBound,
    _grid,
    aligned,
    check_fits,
    memory_bound,
)


def lazy(shape, chunks, dtype="float32") -> xr.Dataset:
    data = dask.array.zeros(shape, chunks=chunks, dtype=dtype)
    return xr.Dataset({"v": (("time", "y", "x"), data)})


@pytest.mark.parametrize(
    ("length", "size", "start", "expected"),
    [
        (10, 4, 0, (4, 4, 2)),
        (10, 4, 5, (3, 4, 3)),  # the cube's last chunk holds 1 row: 3 more fill it
        (2, 4, 5, (2,)),
        (8, 4, 4, (4, 4)),
    ],
)
def test_the_grid_starts_where_the_slice_does(length, size, start, expected):
    assert _grid(length, size, start) == expected
    assert sum(expected) == length


def test_misaligned_dask_chunks_are_rechunked_to_the_cube_chunks():
    dataset = lazy((10, 100, 100), (3, 70, 100))

    result = aligned(dataset, {"v": (4, 50, 100)}, "time", offset=5)

    assert result["v"].chunks == ((3, 4, 3), (50, 50), (100,))
    assert dataset["v"].chunks == ((3, 3, 3, 1), (70, 30), (100,))  # the slice is left alone


def test_aligned_dask_chunks_are_left_as_they_are():
    dataset = lazy((8, 100, 100), (4, 100, 100))

    result = aligned(dataset, {"v": (2, 50, 100)}, "time", offset=0)

    assert result["v"].chunks == dataset["v"].chunks


def test_the_memory_bound_counts_the_largest_chunk_three_times_per_thread():
    dataset = lazy((8, 1000, 1000), (2, 1000, 1000))  # 8 MB dask chunks

    bound = memory_bound(dataset, {"v": (1, 1000, 1000)}, threads=2)

    assert bound == MemoryBound(8_000_000, "v", 2)
    assert bound.per_worker == WORKER_BASE_BYTES + 48_000_000
    assert "peak memory per worker about 237.8 MiB" in bound.describe()


def test_the_cube_chunk_counts_when_it_is_bigger_than_the_dask_chunks():
    dataset = lazy((8, 1000, 1000), (1, 500, 500))
    bound = memory_bound(dataset, {"v": (4, 1000, 1000)}, threads=1)
    assert bound is not None and bound.chunk_bytes == 16_000_000


def test_in_memory_slices_have_no_bound():
    dataset = xr.Dataset({"v": (("time",), np.zeros(3))})
    assert memory_bound(dataset, {}, threads=1) is None


def test_chunks_beyond_the_memory_limit_are_refused_with_advice():
    bound = MemoryBound(400 * 2**20, "v", 1)
    with pytest.raises(ClusterError, match=r"slice big.nc: .* more than the workers' memory_limit"):
        check_fits(bound, 512 * 2**20, "big.nc")
    check_fits(bound, 4 * 2**30, "big.nc")
    check_fits(bound, None, "big.nc")  # no limit known: nothing to check


@pytest.mark.parametrize(
    "error",
    [
        SliceValidationError("a.nc", "has another grid"),
        SliceChangedError("a.nc", "changed", "SNAPSHOT"),
    ],
)
def test_slice_errors_survive_the_trip_from_a_worker(error):
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error)
    assert again.slice_name == "a.nc" and again.reason == error.reason
