"""The slices the benchmarks append, and the tools they append them with (one class per tool).

Slices come from :func:`versioncube.samples.sample_slice`: smooth fields that compress like real
ones. Every data variable carries ``encoding["chunks"] = (1, nlat, nlon)``, one chunk per time
step holding the full field, and every tool writes with Zarr's default codec (zstd) unless a
benchmark asks for another; so all tools store the same chunks and differ only in how they
write them. (versioncube has no chunk setting yet; it takes the first slice's encoding.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import icechunk
import numpy as np
import pandas as pd
import xarray as xr
from icechunk.xarray import to_icechunk
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import versioncube
from benchmarks.common import Context, folder_bytes, time_each
from benchmarks.report import Result
from versioncube.samples import sample_slice

APPEND_DIM = "time"
DATA_VARIABLES = ("tas", "pr")
FIRST_DAY = "2000-01-01"

SliceItem = xr.Dataset | Path


def make_slices(count: int, shape: tuple[int, int]) -> list[xr.Dataset]:
    """``count`` daily slices of one time step, each variable in one chunk per step."""
    slices = []
    for day in pd.date_range(FIRST_DAY, periods=count, freq="D"):
        dataset = sample_slice(day, shape=shape, variables=DATA_VARIABLES)
        for name in DATA_VARIABLES:
            dataset[name].encoding["chunks"] = (1, *shape)
        slices.append(dataset)
    return slices


def with_encoding(
    slices: Sequence[xr.Dataset], update: Mapping[str, Any], drop: Sequence[str] = ()
) -> list[xr.Dataset]:
    """Shallow copies of ``slices``, data variables' encoding updated and ``drop`` keys removed."""
    copies = []
    for dataset in slices:
        copy = dataset.copy(deep=False)
        for name in DATA_VARIABLES:
            variable = copy.variables[name]
            encoding = {**variable.encoding, **update}
            variable.encoding = {key: encoding[key] for key in encoding if key not in drop}
        copies.append(copy)
    return copies


def write_files(slices: Sequence[xr.Dataset], folder: Path) -> list[Path]:
    """Write each slice to its own NetCDF file, as archives deliver them; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, dataset in enumerate(slices):
        path = folder / f"slice-{index:05d}.nc"
        dataset.to_netcdf(path)
        paths.append(path)
    return paths


@dataclasses.dataclass(frozen=True)
class Workload:
    """Slices that several benchmarks append (A and C, B and C), made once per run."""

    context: Context
    name: str
    count: int
    shape: tuple[int, int]

    def slices(self) -> list[xr.Dataset]:
        return self.context.shared(
            f"{self.name}-slices", lambda: make_slices(self.count, self.shape)
        )

    def files(self) -> list[Path]:
        """The slices as NetCDF files, one per slice."""
        folder = self.context.workdir / f"{self.name}-files"
        return self.context.shared(f"{self.name}-files", lambda: write_files(self.slices(), folder))


def data_megabytes(slices: Sequence[xr.Dataset]) -> float:
    """Uncompressed size of the slices' data in MB (10^6 bytes): what throughput is made of."""
    return sum(dataset.nbytes for dataset in slices) / 1e6


class Writer(Protocol):
    """A tool that creates a store at ``target`` with its first slice and appends the rest."""

    def __init__(self, target: Path) -> None: ...

    def append(self, item: SliceItem) -> None: ...


class VersioncubeWriter:
    """``Cube.append``, one commit per slice: what ``versioncube append`` does for each slice."""

    def __init__(self, target: Path) -> None:
        self.cube = versioncube.open_cube(os.fspath(target))

    def append(self, item: SliceItem) -> None:
        self.cube.append(item)


class XarrayWriter:
    """``Dataset.to_zarr(append_dim=...)`` on a plain local Zarr v3 store."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def append(self, item: SliceItem) -> None:
        assert isinstance(item, xr.Dataset)
        if self.target.exists():
            item.to_zarr(self.target, append_dim=APPEND_DIM, consolidated=False)
        else:
            item.to_zarr(self.target, mode="w-", zarr_format=3, consolidated=False)


class IcechunkWriter:
    """The floor: a hand-written loop of ``to_icechunk`` and ``session.commit`` per slice."""

    def __init__(self, target: Path) -> None:
        self.repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(target)))
        self.count = 0

    def append(self, item: SliceItem) -> None:
        assert isinstance(item, xr.Dataset)
        session = self.repo.writable_session("main")
        if self.count == 0:
            to_icechunk(item, session, mode="w-")
        else:
            to_icechunk(item, session, append_dim=APPEND_DIM)
        session.commit(f"append slice {self.count}")
        self.count += 1


class CompressAndWriteFloor:
    """The floor of a big append: compress each field as versioncube's default codec does
    (Blosc lz4, byte shuffle, level 5) and write the bytes to a file of its own on local disk;
    no Zarr, no Icechunk, no metadata."""

    def __init__(self, target: Path) -> None:
        from numcodecs import Blosc

        self.target = target
        self.codec = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)
        self.count = 0
        target.mkdir(parents=True)

    def append(self, item: SliceItem) -> None:
        assert isinstance(item, xr.Dataset)
        for name in DATA_VARIABLES:
            compressed = self.codec.encode(np.ascontiguousarray(item[name].values))
            (self.target / f"{name}.{self.count}").write_bytes(compressed)
        self.count += 1


class IcechunkFloor:
    """The floor of a big append on Icechunk: compress each field as
    :class:`CompressAndWriteFloor` does, hand the bytes to an Icechunk session as the array's
    next chunk, with the array's metadata grown by one step, and commit. No Zarr after the
    first slice (which creates the arrays), no coordinates, no checks: what any tool that
    versions its appends with Icechunk must at least spend."""

    def __init__(self, target: Path) -> None:
        from numcodecs import Blosc

        self.repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(target)))
        self.codec = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)
        self.metadata: dict[str, dict[str, Any]] = {}  # each array's zarr.json, as it grows
        self.count = 0

    def append(self, item: SliceItem) -> None:
        assert isinstance(item, xr.Dataset)
        session = self.repo.writable_session("main")
        if self.count == 0:
            self._create(item, session)
        else:
            sync(self._write(item, session.store))
        session.commit(f"append slice {self.count}")
        self.count += 1

    def _create(self, item: xr.Dataset, session: icechunk.Session) -> None:
        from zarr.codecs import BloscCodec

        compressor = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
        fields = item[list(DATA_VARIABLES)].drop_vars(APPEND_DIM)
        encoding = {
            name: {"compressors": [compressor], "chunks": item[name].shape}
            for name in DATA_VARIABLES
        }
        to_icechunk(fields, session, mode="w-", encoding=encoding)
        for name in DATA_VARIABLES:
            document = sync(session.store.get(f"{name}/zarr.json", default_buffer_prototype()))
            assert document is not None
            self.metadata[name] = json.loads(document.to_bytes())

    async def _write(self, item: xr.Dataset, store: icechunk.IcechunkStore) -> None:
        buffer = default_buffer_prototype().buffer
        grown, chunks = [], []
        for name in DATA_VARIABLES:
            metadata = self.metadata[name]
            metadata["shape"][0] = self.count + 1
            document = buffer.from_bytes(json.dumps(metadata).encode())
            grown.append(store.set(f"{name}/zarr.json", document))
            compressed = self.codec.encode(np.ascontiguousarray(item[name].values))
            chunks.append(store.set(f"{name}/c/{self.count}/0/0", buffer.from_bytes(compressed)))
        await asyncio.gather(*grown)  # Icechunk refuses a chunk beyond the array's shape
        await asyncio.gather(*chunks)


#: The three tools every throughput and growth benchmark runs, by case name.
WRITERS: dict[str, type[Writer]] = {
    "xarray to_zarr": XarrayWriter,
    "icechunk loop": IcechunkWriter,
    "versioncube": VersioncubeWriter,
}
XARRAY, ICECHUNK, VERSIONCUBE = WRITERS


def run_writer(writer: type[Writer], items: Sequence[SliceItem], target: Path) -> list[float]:
    """Create a store at ``target`` with ``writer`` and append ``items``; seconds per append."""
    tool = writer(target)
    return time_each(tool.append, items)


def throughput_result(
    case: str, seconds: Sequence[float], megabytes: float, target: Path
) -> Result:
    """A throughput row: MB/s over all appends, wall time, and the bytes the store holds."""
    total = sum(seconds)
    stored = folder_bytes(target) / 1e6
    metrics = {
        "seconds": total,
        "megabytes": megabytes,
        "mb_per_s": megabytes / total,
        "stored_mb": stored,
    }
    return Result(
        case,
        metrics,
        f"{megabytes / total:.1f} MB/s ({total:.2f} s for {len(seconds)} appends of "
        f"{megabytes:.3g} MB), {stored:.3g} MB stored",
    )


def growth_result(case: str, seconds: Sequence[float], window: int) -> Result:
    """A growth row: mean ms per append over the first and the last ``window`` appends.

    The first append creates the store and is left out of the first window.
    """
    first = 1000 * sum(seconds[1 : window + 1]) / window
    last = 1000 * sum(seconds[-window:]) / window
    return Result(
        case,
        {"first_ms": first, "last_ms": last, "appends": len(seconds)},
        f"{first:.1f} ms per append over appends 2..{window + 1}, {last:.1f} ms over the last "
        f"{window} (of {len(seconds)})",
    )
