"""Turn a slice item (a path, a URI, an ``xarray.Dataset``, or the arguments of a configured
slice source) into a dataset with an identity.

The identity is what the cube's history records for each append, so that a re-run can skip the
slices it already holds without even opening them:

* a local path: its absolute path;
* a URI (``s3://``, ``https://``, ``memory://``, ...): the URI as given;
* an in-memory ``xarray.Dataset``: ``xxh3:`` and a 128-bit XXH3 digest of its names, dims,
  dtypes, attributes and values (for dask-backed data, dask's token of the graph instead, so
  that the fingerprint never computes a big slice twice);
* an item for a configured ``slice_source``: ``source:`` plus the source's name and the item's
  arguments (datasets among them by their digest), e.g. ``source:mymod.crop('a.nc', bbox=[...])``;
* a :class:`~versioncube.slice_sources.SliceSource` or context manager given as the item itself:
  the digest of the dataset it provides (the only case that opens a slice to name it).

The content hash is XXH3 (128 bits): it hashes a slice at about 20 GB/s where sha256 managed
1 GB/s, which made fingerprinting a quarter of a big in-memory append (docs/performance.md).
It is not a cryptographic hash: it tells one's own slices apart, it does not defend against
someone crafting a colliding slice. The scheme prefix says which hash named a slice: cubes
written before the slice ledger (commit record schema 2) hold ``sha256:`` identities and stay
resumable, because a slice is also looked up by its earlier identity
(:func:`earlier_identities`) when the cube's ledger says it holds such names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

import numpy as np
import xarray as xr
import xxhash

from versioncube.errors import SliceOpenError
from versioncube.slices.options import SliceOptions
from versioncube.slices.sources import SliceSource, provides_dataset, source_arguments

#: Anything that can be appended as a slice (a configured slice source takes its own items).
SliceLike = (
    str | os.PathLike[str] | xr.Dataset | SliceSource | contextlib.AbstractContextManager[Any]
)

#: The content hash of new identities, and the earlier one still looked up.
HashScheme = Literal["xxh3", "sha256"]
CONTENT_HASH: HashScheme = "xxh3"
EARLIER_CONTENT_HASHES: tuple[HashScheme, ...] = ("sha256",)


class _Digest(Protocol):
    def update(self, data: Any, /) -> None: ...

    def hexdigest(self) -> str: ...


def _new_digest(scheme: HashScheme) -> _Digest:
    return xxhash.xxh3_128() if scheme == "xxh3" else hashlib.sha256()


@dataclasses.dataclass(frozen=True)
class IdentifiedSlice:
    """A slice item with its identity (what the ledger records) and a short name.

    ``stamp`` is an optional short content stamp of the slice's source (size and modification
    time, an ETag), kept in the ledger next to the identity.
    """

    item: Any
    identity: str
    name: str
    stamp: str | None = None


@dataclasses.dataclass(frozen=True)
class SliceRef:
    """A slice item with its identity and a short name for messages, before opening it.

    ``identity`` is None for a SliceSource or context manager given as the item: its dataset's
    digest names it once it is open (see :meth:`identified`).
    """

    item: Any
    identity: str | None
    name: str
    stamp: str | None = None

    def identified(self, dataset: xr.Dataset) -> IdentifiedSlice:
        """This reference with an identity, taken from the opened dataset if it had none."""
        if self.identity is not None:
            return IdentifiedSlice(self.item, self.identity, self.name, self.stamp)
        identity = dataset_fingerprint(dataset)
        return IdentifiedSlice(self.item, identity, f"dataset {short_digest(identity)}")


def short_digest(identity: str) -> str:
    """A content-hash identity shortened for messages: ``xxh3:`` and 12 hex digits."""
    scheme, _, digest = identity.partition(":")
    return f"{scheme}:{digest[:12]}"


def slice_ref(
    item: Any, options: SliceOptions | None = None, *, scheme: HashScheme = CONTENT_HASH
) -> SliceRef:
    """Compute a slice's identity and display name (reads nothing for paths and URIs).

    ``scheme`` is the content hash of in-memory datasets (an earlier one, to look up slices a
    cube recorded under it).
    """
    if options is not None and options.source is not None:
        return _source_ref(item, options.source, scheme)
    if provides_dataset(item):
        return SliceRef(item, None, type(item).__name__)
    if isinstance(item, xr.Dataset):
        identity = dataset_fingerprint(item, scheme)
        source = item.encoding.get("source")
        name = Path(source).name if source else f"dataset {short_digest(identity)}"
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


def earlier_identities(
    ref: SliceRef | IdentifiedSlice,
    options: SliceOptions | None = None,
    dataset: xr.Dataset | None = None,
) -> list[str]:
    """The identities the slice had under earlier content hashes (empty when its identity
    involves no content hash: paths and URIs never changed). ``dataset``: the opened slice, for
    items whose identity comes from their dataset."""
    if ref.identity is None or f"{CONTENT_HASH}:" not in ref.identity:
        return []
    found = []
    for scheme in EARLIER_CONTENT_HASHES:
        if dataset is not None and ref.identity.startswith(f"{CONTENT_HASH}:"):
            found.append(dataset_fingerprint(dataset, scheme))
        else:
            earlier = slice_ref(ref.item, options, scheme=scheme).identity
            if earlier is not None:
                found.append(earlier)
    return found


def _source_ref(item: Any, source: Callable[..., Any], scheme: HashScheme) -> SliceRef:
    try:
        args, kwargs = source_arguments(item)
    except TypeError as error:
        raise SliceOpenError(repr(item)[:60], str(error)) from None
    texts = [_argument_text(arg, scheme) for arg in args]
    texts += [f"{key}={_argument_text(value, scheme)}" for key, value in sorted(kwargs.items())]
    qualname = getattr(source, "__qualname__", type(source).__name__)
    module = getattr(source, "__module__", None)
    identity = f"source:{module + '.' if module else ''}{qualname}({', '.join(texts)})"
    if len(args) == 1 and not kwargs and isinstance(args[0], str | os.PathLike | xr.Dataset):
        name = slice_ref(args[0]).name
    else:
        name = f"{qualname.rpartition('.')[2]}({', '.join(texts)})"
        name = name if len(name) <= 60 else name[:57] + "..."
    return SliceRef(item, identity, name)


def _argument_text(value: Any, scheme: HashScheme = CONTENT_HASH) -> str:
    """A slice-source argument in the identity: stable text, datasets by their digest."""
    if isinstance(value, xr.Dataset):
        return dataset_fingerprint(value, scheme)
    if isinstance(value, os.PathLike):
        return repr(os.fspath(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_argument_text(item, scheme) for item in value) + "]"
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda pair: str(pair[0]))
        texts = (f"{key!r}: {_argument_text(item, scheme)}" for key, item in items)
        return "{" + ", ".join(texts) + "}"
    return repr(value)


def dataset_fingerprint(dataset: xr.Dataset, scheme: HashScheme = CONTENT_HASH) -> str:
    """A content digest of an in-memory dataset (names, dims, dtypes, attrs and values), as
    ``<scheme>:<hex digest>``."""
    digest = _new_digest(scheme)
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
        _digest_data(digest, variable.data, scheme)
    return f"{scheme}:{digest.hexdigest()}"


def _digest_data(digest: _Digest, data: Any, scheme: HashScheme) -> None:
    if hasattr(data, "dask"):
        from dask.base import tokenize

        digest.update(tokenize(data).encode())
        return
    array = np.asarray(data)
    if array.dtype.kind == "O":
        digest.update(_json_bytes([str(value) for value in array.ravel()]))
    elif scheme == "sha256":  # as commit record schema 2 did: the digest of the values' digest
        values = np.ascontiguousarray(array).view(np.uint8).ravel()
        digest.update(hashlib.sha256(values).digest())
    else:
        digest.update(np.ascontiguousarray(array).view(np.uint8).ravel())


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, default=str).encode()
