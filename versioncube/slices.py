"""Turn a slice item (a path, a URI or an ``xarray.Dataset``) into a dataset with an identity.

The identity is what the cube's history records for each append, so that a re-run can skip the
slices it already holds without even opening them:

* a local path: its absolute path;
* a URI (``s3://``, ``https://``, ``memory://``, ...): the URI as given;
* an in-memory ``xarray.Dataset``: ``sha256:`` and a digest of its names, dims, dtypes,
  attributes and values (for dask-backed data, dask's token of the graph instead, so that the
  fingerprint never computes a big slice twice).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import xarray as xr

from versioncube.errors import SliceOpenError

SliceLike = str | os.PathLike | xr.Dataset

#: Slices from files up to this size are read into memory before validation, so that read
#: errors surface as slice errors and validation sees the real values. Bigger ones stay lazy
#: (dask-backed) and are written chunk by chunk.
LOAD_LIMIT_BYTES = 512 * 2**20


@dataclasses.dataclass(frozen=True)
class SliceRef:
    """A slice item with its identity and a short name for messages, before opening it."""

    item: SliceLike
    identity: str
    name: str


def slice_ref(item: SliceLike) -> SliceRef:
    """Compute a slice's identity and display name (reads nothing for paths and URIs)."""
    if isinstance(item, xr.Dataset):
        identity = dataset_fingerprint(item)
        source = item.encoding.get("source")
        name = Path(source).name if source else f"dataset {identity[:19]}"
        return SliceRef(item, identity, name)
    if not isinstance(item, str | os.PathLike):
        raise SliceOpenError(
            repr(item)[:60],
            f"is of type {type(item).__name__}; expected a path, a URI or an xarray Dataset",
        )
    text = os.fspath(item)
    scheme = urlparse(text).scheme
    if scheme == "file":
        text = urlparse(text).path
    if len(scheme) <= 1 or scheme == "file":
        identity = str(Path(text).expanduser().absolute())
    else:
        identity = text
    name = Path(urlparse(identity).path.rstrip("/")).name or identity
    return SliceRef(item, identity, name)


def dataset_fingerprint(dataset: xr.Dataset) -> str:
    """A content digest of an in-memory dataset (names, dims, dtypes, attrs and values)."""
    digest = hashlib.sha256()
    digest.update(_json_bytes(dataset.attrs))
    for name in sorted(map(str, dataset.variables)):
        variable = dataset.variables[name]
        header = {
            "name": name,
            "dims": list(map(str, variable.dims)),
            "dtype": variable.dtype.str,
            "shape": list(variable.shape),
            "attrs": variable.attrs,
        }
        digest.update(_json_bytes(header))
        digest.update(_data_digest(variable.data))
    return "sha256:" + digest.hexdigest()


def _data_digest(data: Any) -> bytes:
    if hasattr(data, "dask"):
        from dask.base import tokenize

        return tokenize(data).encode()
    array = np.asarray(data)
    if array.dtype.kind == "O":
        return _json_bytes([str(value) for value in array.ravel()])
    return hashlib.sha256(np.ascontiguousarray(array).view(np.uint8).ravel()).digest()


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, default=str).encode()


@contextlib.contextmanager
def open_slice(
    ref: SliceRef,
    *,
    engine: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[xr.Dataset]:
    """Open a slice for validation and writing; closes the file afterwards."""
    if isinstance(ref.item, xr.Dataset):
        yield ref.item
        return
    location = ref.identity
    is_remote = "://" in location
    with contextlib.ExitStack() as stack:
        try:
            if is_remote:
                dataset = _open_remote(location, engine, storage_options or {}, stack)
            else:
                dataset = _open_local(location, engine)
            stack.callback(dataset.close)
            small = dataset.nbytes <= LOAD_LIMIT_BYTES
            dataset = dataset.load() if small else dataset.chunk({})
        except SliceOpenError:
            raise
        except Exception as error:  # any reader failure means this slice cannot be used
            raise SliceOpenError(ref.name, f"cannot be read: {_describe(error)}") from error
        yield dataset


def _open_local(path: str, engine: str | None) -> xr.Dataset:
    if not os.path.exists(path):
        raise SliceOpenError(Path(path).name, f"file not found: {path}")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise SliceOpenError(Path(path).name, f"file is empty (0 bytes): {path}")
    if engine is None and (os.path.isdir(path) or path.rstrip("/").endswith(".zarr")):
        engine = "zarr"
    if engine == "zarr":
        return _open_zarr(path, {})
    return xr.open_dataset(path, engine=engine, chunks=None)


def _open_remote(
    uri: str, engine: str | None, storage_options: Mapping[str, Any], stack: contextlib.ExitStack
) -> xr.Dataset:
    if engine == "zarr" or (engine is None and uri.rstrip("/").endswith(".zarr")):
        return _open_zarr(uri, storage_options)
    import fsspec

    file = stack.enter_context(fsspec.open(uri, mode="rb", **storage_options))
    return xr.open_dataset(file, engine=engine, chunks=None)


def _open_zarr(location: str, storage_options: Mapping[str, Any]) -> xr.Dataset:
    with warnings.catch_warnings():
        # slices without consolidated metadata are normal; reading them is not worth a warning
        warnings.filterwarnings("ignore", "Failed to open Zarr store with consolidated metadata")
        return xr.open_dataset(
            location,
            engine="zarr",
            chunks=None,
            backend_kwargs={"storage_options": dict(storage_options) or None},
        )


def _describe(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if text.startswith("did not find a match in any of xarray's currently installed IO backends"):
        return "not a NetCDF, HDF5 or Zarr file that an installed reader recognises"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
