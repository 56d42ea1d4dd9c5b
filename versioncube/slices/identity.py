"""Turn a slice item (a path, a URI, an ``xarray.Dataset``, or the arguments of a configured
slice source) into a dataset with an identity.

The identity is what the cube's history records for each append, so that a re-run can skip the
slices it already holds without even opening them:

* a local path: its absolute path;
* a URI (``s3://``, ``https://``, ``memory://``, ...): the URI as given;
* an in-memory ``xarray.Dataset``: ``sha256:`` and a digest of its names, dims, dtypes,
  attributes and values (for dask-backed data, dask's token of the graph instead, so that the
  fingerprint never computes a big slice twice);
* an item for a configured ``slice_source``: ``source:`` plus the source's name and the item's
  arguments (datasets among them by their digest), e.g. ``source:mymod.crop('a.nc', bbox=[...])``;
* a :class:`~versioncube.slice_sources.SliceSource` or context manager given as the item itself:
  the digest of the dataset it provides (the only case that opens a slice to name it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import xarray as xr

from versioncube.errors import SliceOpenError
from versioncube.slices.options import SliceOptions
from versioncube.slices.sources import SliceSource, provides_dataset, source_arguments

#: Anything that can be appended as a slice (a configured slice source takes its own items).
SliceLike = (
    str
    | os.PathLike[str]
    | xr.Dataset
    | xr.DataTree
    | SliceSource
    | contextlib.AbstractContextManager[Any]
)


@dataclasses.dataclass(frozen=True)
class IdentifiedSlice:
    """A slice item with its identity (what the history records) and a short name."""

    item: Any
    identity: str
    name: str


@dataclasses.dataclass(frozen=True)
class SliceRef:
    """A slice item with its identity and a short name for messages, before opening it.

    ``identity`` is None for a SliceSource or context manager given as the item: its dataset's
    digest names it once it is open (see :meth:`identified`).
    """

    item: Any
    identity: str | None
    name: str

    def identified(self, dataset: xr.Dataset | xr.DataTree) -> IdentifiedSlice:
        """This reference with an identity, taken from the opened dataset if it had none."""
        if self.identity is not None:
            return IdentifiedSlice(self.item, self.identity, self.name)
        identity = dataset_fingerprint(dataset)
        return IdentifiedSlice(self.item, identity, f"dataset {identity[:19]}")


def slice_ref(item: Any, options: SliceOptions | None = None) -> SliceRef:
    """Compute a slice's identity and display name (reads nothing for paths and URIs)."""
    if options is not None and options.source is not None:
        return _source_ref(item, options.source)
    if isinstance(item, xr.DataTree):
        identity = dataset_fingerprint(item)
        return SliceRef(item, identity, f"tree {identity[:19]}")
    if provides_dataset(item):
        return SliceRef(item, None, type(item).__name__)
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
    identity = location_identity(item)
    name = Path(urlparse(identity).path.rstrip("/")).name or identity
    return SliceRef(item, identity, name)


def location_identity(item: str | os.PathLike[str]) -> str:
    """The identity of a path or URI item: an absolute local path, or the URI as given."""
    text = os.fspath(item)
    scheme = urlparse(text).scheme
    if scheme == "file":
        text = urlparse(text).path
    if len(scheme) <= 1 or scheme == "file":
        return str(Path(text).expanduser().absolute())
    return text


def _source_ref(item: Any, source: Callable[..., Any]) -> SliceRef:
    try:
        args, kwargs = source_arguments(item)
    except TypeError as error:
        raise SliceOpenError(repr(item)[:60], str(error)) from None
    texts = [_argument_text(arg) for arg in args]
    texts += [f"{key}={_argument_text(value)}" for key, value in sorted(kwargs.items())]
    qualname = getattr(source, "__qualname__", type(source).__name__)
    module = getattr(source, "__module__", None)
    identity = f"source:{module + '.' if module else ''}{qualname}({', '.join(texts)})"
    if len(args) == 1 and not kwargs and isinstance(args[0], str | os.PathLike | xr.Dataset):
        name = slice_ref(args[0]).name
    else:
        name = f"{qualname.rpartition('.')[2]}({', '.join(texts)})"
        name = name if len(name) <= 60 else name[:57] + "..."
    return SliceRef(item, identity, name)


def _argument_text(value: Any) -> str:
    """A slice-source argument in the identity: stable text, datasets by their digest."""
    if isinstance(value, xr.Dataset):
        return dataset_fingerprint(value)
    if isinstance(value, os.PathLike):
        return repr(os.fspath(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(_argument_text, value)) + "]"
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda pair: str(pair[0]))
        return "{" + ", ".join(f"{key!r}: {_argument_text(item)}" for key, item in items) + "}"
    return repr(value)


def dataset_fingerprint(dataset: xr.Dataset | xr.DataTree) -> str:
    """A content digest of an in-memory dataset (names, dims, dtypes, attrs and values); of a
    DataTree, the digests of its nodes' own datasets with their paths."""
    if isinstance(dataset, xr.DataTree):
        nodes = [
            f"{node.path}={dataset_fingerprint(node.to_dataset(inherit=False))}"
            for node in dataset.subtree
        ]
        return "sha256:" + hashlib.sha256("\n".join(nodes).encode()).hexdigest()
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
