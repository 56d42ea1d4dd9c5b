"""The input formats a zappend or xarray user has, each as a way to turn a dataset into a slice
item (a file path or an in-memory dataset) and to open that item again as xarray does.

``write(dataset, stem)`` returns the slice item for ``dataset`` (writing ``stem`` + suffix when
it is a file); ``opened(item)`` is the item as plain xarray opens it (decoded), the reference
the cube must read back equal to.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import numcodecs
import numpy as np
import xarray as xr
import zarr.codecs

Item = str | xr.Dataset
#: Writes a dataset as one format under a path stem; returns what to append.
Writer = Callable[[xr.Dataset, Path], Item]


@dataclasses.dataclass(frozen=True)
class Format:
    name: str
    write: Callable[[xr.Dataset, Path], Item]
    is_file: bool = True
    lossy: bool = False  # the codec changes values (a cube with it changes later slices too)
    packed: bool = False  # slices are packed: a neighbour in a cube must be packed alike

    def __str__(self) -> str:
        return self.name


def opened(item: Item) -> xr.Dataset:
    """A slice item as plain xarray opens it (CF-decoded), loaded."""
    if isinstance(item, xr.Dataset):
        return xr.decode_cf(item).load() if _is_raw(item) else item.load()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Ambiguous reference date string")
        if item.endswith(".zarr"):
            return xr.open_dataset(item, engine="zarr", consolidated=False).load()
        return xr.open_dataset(item).load()


def _is_raw(dataset: xr.Dataset) -> bool:
    return any(" since " in str(v.attrs.get("units", "")) for v in dataset.variables.values())


def _plain(dataset: xr.Dataset) -> xr.Dataset:
    """The dataset without encodings of an earlier reader (they may not suit the writer)."""
    copy = dataset.copy(deep=False)
    copy.encoding = {}  # no unlimited dimensions: contiguous storage needs fixed ones
    for variable in copy.variables.values():  # times keep their units (bounds share them)
        variable.encoding = {
            key: variable.encoding[key]
            for key in ("units", "calendar", "dtype")
            if key in variable.encoding and variable.dtype.kind == "M"
        }
    return copy


def _fields(dataset: xr.Dataset) -> list[str]:
    return [str(name) for name, var in dataset.data_vars.items() if var.dtype.kind == "f"]


def _netcdf(fmt: str, engine: str, **encoding: Any) -> Writer:
    def write(dataset: xr.Dataset, stem: Path) -> Item:
        path = stem.with_suffix(".nc")
        plain = _plain(dataset)
        settings = {name: dict(encoding) for name in _fields(plain)}
        if "chunksizes" in encoding:
            settings = {
                name: {**encoding, "chunksizes": tuple(min(2, n) for n in plain[name].shape)}
                for name in _fields(plain)
            }
        plain.to_netcdf(path, format=cast(Any, fmt), engine=cast(Any, engine), encoding=settings)
        return str(path)

    return write


def _zarr(zarr_format: int, make: Callable[[xr.DataArray], dict[str, Any]]) -> Writer:
    def write(dataset: xr.Dataset, stem: Path) -> Item:
        path = stem.with_suffix(".zarr")
        plain = _plain(dataset)
        encoding = {name: make(plain[name]) for name in _fields(plain)}
        plain.to_zarr(path, zarr_format=zarr_format, consolidated=False, encoding=encoding)
        return str(path)

    return write


def _sharded(array: xr.DataArray) -> dict[str, Any]:
    chunks = tuple(max(1, n // 2) for n in array.shape)
    return {
        "chunks": chunks,
        "shards": tuple(
            c * 2 if n >= c * 2 else n for c, n in zip(chunks, array.shape, strict=True)
        ),
    }


def _big_endian_transposed(array: xr.DataArray) -> dict[str, Any]:
    order = tuple(reversed(range(array.ndim)))
    return {"serializer": zarr.codecs.BytesCodec(endian="big"),
            "filters": (zarr.codecs.TransposeCodec(order=order),)}  # fmt: skip


def _in_memory(dataset: xr.Dataset, stem: Path) -> Item:
    return dataset.load()


def _dask(dataset: xr.Dataset, stem: Path) -> Item:
    return dataset.chunk({})


#: float64 scale and offset: Zarr keeps attributes as JSON, so float32 ones would come back as
#: float64 and decode to float64 (docs/coming-from-zappend.md)
PACKING = {"dtype": "int16", "scale_factor": 0.01, "add_offset": 0.0,
           "_FillValue": np.int16(-32768)}  # fmt: skip


def _packed_netcdf(dataset: xr.Dataset, stem: Path) -> Item:
    path = stem.with_suffix(".nc")
    plain = _plain(dataset)
    plain.to_netcdf(path, encoding={name: dict(PACKING) for name in _fields(plain)})
    return str(path)


def _raw(write: Callable[[xr.Dataset, Path], Item]) -> Callable[[xr.Dataset, Path], Item]:
    def raw(dataset: xr.Dataset, stem: Path) -> Item:
        path = write(dataset, stem)
        assert isinstance(path, str)
        return xr.open_dataset(path, decode_cf=False).load()

    return raw


def _zarr2(**encoding: Any) -> Writer:
    return _zarr(2, lambda array: dict(encoding))


def _zarr3(**encoding: Any) -> Writer:
    return _zarr(3, lambda array: dict(encoding))


def _typed(codec: Callable[[str], Any], key: str = "filters", **more: Any) -> Writer:
    return _zarr(2, lambda array: {key: (codec(array.dtype.str),), **more})


FORMATS: list[Format] = [
    Format("netcdf3-classic", _netcdf("NETCDF3_CLASSIC", "scipy")),
    Format("netcdf3-64bit", _netcdf("NETCDF3_64BIT", "netcdf4")),
    Format("netcdf4-zlib-shuffle-chunked",
           _netcdf("NETCDF4", "netcdf4", zlib=True, shuffle=True, complevel=4, chunksizes=())),
    Format("netcdf4-contiguous", _netcdf("NETCDF4", "netcdf4", contiguous=True)),
    Format("hdf5-h5netcdf-gzip", _netcdf("NETCDF4", "h5netcdf", compression="gzip")),
    Format("zarr2-blosc-lz4", _zarr2(compressors=(numcodecs.Blosc("lz4", 5, 1),))),
    Format("zarr2-blosc-zstd", _zarr2(compressors=(numcodecs.Blosc("zstd", 3, 2),))),
    Format("zarr2-zstd", _zarr2(compressors=(numcodecs.Zstd(level=3),))),
    Format("zarr2-zlib", _zarr2(compressors=(numcodecs.Zlib(level=4),))),
    Format("zarr2-gzip", _zarr2(compressors=(numcodecs.GZip(level=4),))),
    Format("zarr2-lz4", _zarr2(compressors=(numcodecs.LZ4(),))),
    Format("zarr2-delta", _typed(lambda dtype: numcodecs.Delta(dtype=dtype))),
    Format("zarr2-fixedscaleoffset",
           _typed(lambda dtype: numcodecs.FixedScaleOffset(0, 1000, dtype=dtype, astype="<i4")),
           lossy=True),
    Format("zarr2-shuffle", _zarr2(filters=(numcodecs.Shuffle(),),
                                   compressors=(numcodecs.Zlib(),))),
    Format("zarr2-no-compressor", _zarr2(compressors=None)),
    Format("zarr3-zstd", _zarr3(compressors=(zarr.codecs.ZstdCodec(level=3),))),
    Format("zarr3-gzip", _zarr3(compressors=(zarr.codecs.GzipCodec(level=4),))),
    Format("zarr3-blosc", _zarr3(compressors=(zarr.codecs.BloscCodec(cname="zstd"),))),
    Format("zarr3-crc32c", _zarr3(compressors=(zarr.codecs.ZstdCodec(),
                                               zarr.codecs.Crc32cCodec()))),
    Format("zarr3-sharded", _zarr(3, _sharded)),
    Format("zarr3-big-endian-transposed", _zarr(3, _big_endian_transposed)),
    Format("memory-numpy", _in_memory, is_file=False),
    Format("memory-dask", _dask, is_file=False),
    Format("decode_cf-false", _raw(_netcdf("NETCDF4", "netcdf4")), is_file=False),
    Format("netcdf4-packed", _packed_netcdf, packed=True),
    Format("decode_cf-false-packed", _raw(_packed_netcdf), is_file=False, packed=True),
]  # fmt: skip

BY_NAME: Mapping[str, Format] = {fmt.name: fmt for fmt in FORMATS}
