"""Turn a slice item (a path, a URI, an ``xarray.Dataset``, or the arguments of a configured
slice source) into a dataset with an identity.

The identity is what the cube's history records for each append, so that a re-run can skip the
slices it already holds without even opening them:

* a local path: its absolute path with symbolic links resolved, so that every spelling of one
  file (relative, absolute, ``file://`` with or without ``localhost`` and %-escapes, through a
  linked folder) is the same slice;
* a URI (``s3://``, ``https://``, ``memory://``, ...): the URI as given;
* an in-memory ``xarray.Dataset``: ``xxh3:`` and a 128-bit XXH3 digest of its names, dims,
  dtypes, attributes and values (for dask-backed data, dask's token of the graph instead, so
  that the fingerprint never computes a big slice twice); one cut from a file is named after
  the file and the cut, ``sst.nc[time=1979-01-15T12:00]``; a ``DataTree``: the digest of its
  nodes' digests with their paths;
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

A path or URI also has a *content stamp* (:func:`content_stamp`): what its storage says about
its content without reading it (size and modification time on local disk, the ETag or size
and modification time on object stores). A re-run compares it with the stamp recorded when the
slice was appended (the ledger keeps it with the identity), so that a file re-issued at the
same path with other content is refused instead of skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlparse

import numpy as np
import xarray as xr
import xxhash

from versioncube.display.format import format_label
from versioncube.errors import SliceOpenError, SliceTypeError
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
    """A slice item with its identity (what the ledger records), a short name, and the content
    stamp of a file slice (None for other slices, or when the storage gives none), which the
    ledger keeps next to the identity."""

    item: Any
    identity: str
    name: str
    stamp: str | None = None


@dataclasses.dataclass(frozen=True)
class SliceRef:
    """A slice item with its identity and a short name for messages, before opening it.

    ``identity`` is None for a SliceSource or context manager given as the item: its dataset's
    digest names it once it is open (see :meth:`identified`). ``location`` is where a path or
    URI item points (None for other items); its content stamp is taken from there.
    """

    item: Any
    identity: str | None
    name: str
    location: str | None = None

    def stamp(self, storage_options: Mapping[str, Any] | None = None) -> str | None:
        """The content stamp of a path or URI slice as its storage says it now (None for
        other slices, or when the storage cannot say)."""
        if self.location is None:
            return None
        return content_stamp(self.location, storage_options)

    def identified(
        self, dataset: xr.Dataset | xr.DataTree, stamp: str | None = None
    ) -> IdentifiedSlice:
        """This reference with an identity, taken from the opened dataset if it had none."""
        if self.identity is not None:
            return IdentifiedSlice(self.item, self.identity, self.name, stamp)
        identity = dataset_fingerprint(dataset)
        kind = "tree" if isinstance(dataset, xr.DataTree) else "dataset"
        return IdentifiedSlice(self.item, identity, f"{kind} {short_digest(identity)}", stamp)


def short_digest(identity: str) -> str:
    """A content-hash identity shortened for messages: ``xxh3:`` and 12 hex digits."""
    scheme, _, digest = identity.partition(":")
    return f"{scheme}:{digest[:12]}"


def slice_ref(
    item: Any,
    options: SliceOptions | None = None,
    *,
    append_dim: str | None = None,
    scheme: HashScheme = CONTENT_HASH,
) -> SliceRef:
    """Compute a slice's identity and display name (reads nothing for paths and URIs).

    ``append_dim`` names the cut of an in-memory slice taken from a file. ``scheme`` is the
    content hash of in-memory datasets (an earlier one, to look up slices a cube recorded under
    it).
    """
    if options is not None and options.source is not None:
        return _source_ref(item, options.source, scheme)
    if isinstance(item, xr.DataTree):
        identity = dataset_fingerprint(item, scheme)
        return SliceRef(item, identity, f"tree {short_digest(identity)}")
    if provides_dataset(item):
        return SliceRef(item, None, type(item).__name__)
    if isinstance(item, xr.Dataset):
        identity = dataset_fingerprint(item, scheme)
        return SliceRef(item, identity, _dataset_name(item, identity, append_dim))
    if not isinstance(item, str | os.PathLike):
        raise SliceTypeError(
            repr(item)[:60],
            f"is of type {type(item).__name__}; expected a path, a URI or an xarray Dataset",
        )
    identity = location_identity(item)
    name = Path(urlparse(identity).path.rstrip("/")).name or identity
    return SliceRef(item, identity, name, identity)


def location_identity(item: str | os.PathLike[str]) -> str:
    """Where a path or URI points: the real absolute path of a local file (``file://`` URIs
    included, symbolic links resolved), else the URI as given."""
    text = os.fspath(item)
    parsed = urlparse(text)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        text = unquote(parsed.path)
    elif len(parsed.scheme) > 1:  # one letter: a Windows drive
        return text
    return os.path.realpath(Path(text).expanduser())


def content_stamp(location: str, storage_options: Mapping[str, Any] | None = None) -> str | None:
    """What the storage says about a file's content without reading it, or None.

    Local files: size and modification time (ns); local folders (Zarr): the count, total size
    and newest modification time of their files; URIs: the ETag (or size and modification
    time) that fsspec's ``info`` reports, for a folder those of its files.
    """
    try:
        if "://" not in location:
            return _local_stamp(location)
        return _remote_stamp(location, storage_options or {})
    except (OSError, ValueError, ImportError):  # not there (yet), or no stamp to be had
        return None


def _local_stamp(path: str) -> str | None:
    if os.path.isfile(path):
        status = os.stat(path)
        return f"{status.st_size} bytes, modified {_iso(status.st_mtime_ns)}"
    if not os.path.isdir(path):
        return None
    count = size = newest = 0
    for folder, _, files in os.walk(path):
        for file in files:
            status = os.stat(os.path.join(folder, file))
            count, size = count + 1, size + status.st_size
            newest = max(newest, status.st_mtime_ns)
    return f"{count} files, {size} bytes, newest modified {_iso(newest)}"


def _remote_stamp(uri: str, storage_options: Mapping[str, Any]) -> str | None:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri, **storage_options)
    info = fs.info(path)
    if info.get("type") == "directory":
        found = fs.find(path, detail=True)
        digest = hashlib.sha256(
            _json_bytes(sorted((name, _entry_stamp(entry)) for name, entry in found.items()))
        )
        return f"{len(found)} files, listing sha256:{digest.hexdigest()[:16]}"
    return _entry_stamp(info)


def _entry_stamp(info: Mapping[str, Any]) -> str:
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    if etag:
        return f"etag {str(etag).strip(chr(34))}"
    modified = info.get("LastModified") or info.get("mtime") or info.get("updated")
    modified = modified or info.get("created")
    return f"{info.get('size')} bytes, modified {modified}"


def _iso(nanoseconds: int) -> str:
    moment = dt.datetime.fromtimestamp(nanoseconds // 10**9, dt.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanoseconds % 10**9:09d}Z"


def _dataset_name(dataset: xr.Dataset, identity: str, append_dim: str | None) -> str:
    """An in-memory slice's name: its file and cut (``sst.nc[time=1979-01-15]``) when it came
    from one, else its digest."""
    source = dataset.encoding.get("source")
    if not source:
        return f"dataset {short_digest(identity)}"
    name = Path(str(source)).name
    if _whole_file(dataset):
        return name
    labels = dataset.variables.get(append_dim) if append_dim else None
    if labels is not None and labels.ndim == 1 and labels.size:
        first, last = format_label(labels.values[0]), format_label(labels.values[-1])
        cut = first if first == last else f"{first}..{last}"
        return f"{name}[{append_dim}={cut}]"
    return f"{name}[{identity.partition(':')[2][:12]}]"


def _whole_file(dataset: xr.Dataset) -> bool:
    """Whether the dataset has every variable's full shape in its file (as NetCDF readers
    record it in ``original_shape``); False when that cannot be told."""
    shapes = [
        (variable.shape, variable.encoding.get("original_shape"))
        for variable in dataset.variables.values()
    ]
    known = [(shape, tuple(original)) for shape, original in shapes if original is not None]
    return bool(known) and len(known) == len(shapes) and all(a == b for a, b in known)


def earlier_identities(
    ref: SliceRef | IdentifiedSlice,
    options: SliceOptions | None = None,
    dataset: xr.Dataset | xr.DataTree | None = None,
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


def dataset_fingerprint(
    dataset: xr.Dataset | xr.DataTree, scheme: HashScheme = CONTENT_HASH
) -> str:
    """A content digest of an in-memory dataset (names, dims, dtypes, attrs and values); of a
    DataTree, the digests of its nodes' own datasets with their paths; as
    ``<scheme>:<hex digest>``."""
    if isinstance(dataset, xr.DataTree):
        nodes = [
            f"{node.path}={dataset_fingerprint(node.to_dataset(inherit=False), scheme)}"
            for node in dataset.subtree
        ]
        tree_digest = _new_digest(scheme)
        tree_digest.update("\n".join(nodes).encode())
        return f"{scheme}:{tree_digest.hexdigest()}"
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
