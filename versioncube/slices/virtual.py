"""Opening a file as a *virtual* slice: references to its chunks instead of its values.

VirtualiZarr parses the file (NetCDF3 with its own parser, NetCDF4/HDF5 with its HDF parser,
GRIB1/GRIB2 with gribberish's parser, chosen by the file's first bytes) into a dataset whose
data variables are ``ManifestArray``\\ s: each chunk's file, offset and length. Coordinates,
the bounds of coordinates and CF time variables are loaded as values: they are stored natively
in the cube (the append coordinate with the cube's time encoding).

The file's *stamp* (size and modification time of a local file, or the ETag of an object) is
taken before parsing: the references carry it, so Icechunk refuses to read a file that changed
after it was referenced, and the append compares it again before committing.

``virtualizarr`` (and ``obstore``) are imported only here, when a virtual slice is opened.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import math
import os
import struct
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import xarray as xr

from versioncube.errors import SliceOpenError, SliceValidationError
from versioncube.store.target import s3_options

#: HDF5 filters virtual references cannot decode here, by h5py's name or registered id.
UNSUPPORTED_FILTERS = {
    "lzf": "LZF",
    "szip": "szip",
    "scaleoffset": "HDF5 scale-offset",
    "307": "bzip2",
    "32015": "zstd (needs hdf5plugin)",
    "32001": "blosc (needs hdf5plugin)",
    "32004": "lz4",
    "32008": "bitshuffle",
}
NO_VIRTUAL_HINT = "append it without --virtual to copy its values"
#: The CF attributes whose values must agree between files referenced by one variable.
CF_KEYS = ("scale_factor", "add_offset", "_FillValue", "missing_value", "units", "calendar")


@dataclasses.dataclass(frozen=True)
class SourceStamp:
    """What a referenced file was when its references were taken: its size and modification
    time (local files, in nanoseconds) or its ETag (object stores)."""

    url: str
    size: int | None = None
    mtime_ns: int | None = None
    etag: str | None = None

    def checksum(self) -> dt.datetime | str | None:
        """What the references carry for Icechunk to refuse a changed file: the ETag, else the
        modification time rounded up to the second (Icechunk compares whole seconds)."""
        if self.etag:
            return self.etag
        if self.mtime_ns is None:
            return None
        seconds = math.ceil(self.mtime_ns / 1e9)
        return dt.datetime.fromtimestamp(seconds, dt.UTC)

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SourceStamp:
        return cls(
            url=str(data["url"]),
            size=data.get("size"),
            mtime_ns=data.get("mtime_ns"),
            etag=data.get("etag"),
        )

    def differs(self, other: SourceStamp) -> str | None:
        """How ``other`` (the file now) differs from this stamp, or None."""
        if self.etag is not None and other.etag != self.etag:
            return f"ETag {other.etag} (was {self.etag})"
        if self.size is not None and other.size != self.size:
            return f"size {other.size} bytes (was {self.size})"
        if self.mtime_ns is not None and other.mtime_ns != self.mtime_ns:
            return f"modified at {_ns_time(other.mtime_ns)} (was {_ns_time(self.mtime_ns)})"
        return None


def _ns_time(ns: int | None) -> str:
    if ns is None:
        return "?"
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


@dataclasses.dataclass(frozen=True)
class VirtualSlice:
    """A parsed file: loaded variables (numpy) and referenced ones (``ManifestArray``)."""

    url: str
    dataset: xr.Dataset
    references: frozenset[str]  # names of the referenced variables
    stamp: SourceStamp
    #: the parser's ManifestStore and the group in it the dataset is: the file's values can be
    #: read through it (:meth:`values`)
    store: Any = None
    store_group: str | None = None

    def values(self) -> xr.Dataset:
        """The file's values (decoded, lazily), read through its references: what a pyramid's
        downsampled levels are computed from. The dims are named as in :attr:`dataset`."""
        if self.store is None:
            raise ValueError(f"{self.url}: parsed without its store, its values cannot be read")
        dataset = xr.open_dataset(
            self.store,
            engine="zarr",
            group=self.store_group,
            consolidated=False,
            zarr_format=3,
            chunks=None,
        )
        return _loaded(_plain_dims(dataset), load=False)

    def stand_in(self) -> xr.Dataset:
        """The slice as the checks see it: decoded (dtypes after CF decoding, loaded values),
        with zero-cost broadcast zeros in place of the referenced values, which are never read."""
        variables: dict[str, xr.Variable] = {}
        for name, variable in self.dataset.variables.items():
            if name in self.references:
                zeros = np.broadcast_to(np.zeros((), variable.dtype), variable.shape)
                attrs = decoded_attrs(settled_attrs(variable.attrs, variable.dtype))
                raw = xr.Variable(variable.dims, zeros, attrs)
                variables[str(name)] = xr.conventions.decode_cf_variable(str(name), raw)
            else:
                variables[str(name)] = variable
        coords = [str(name) for name in self.dataset.coords]
        dataset = xr.Dataset(
            {name: var for name, var in variables.items() if name not in coords},
            coords={name: variables[name] for name in coords},
            attrs=self.dataset.attrs,
        )
        return dataset


def location_of(url: str) -> tuple[str, str]:
    """(scheme, path or key) of a file URL: ``("file", "/data/a.nc")``, ``("s3", "b/k.nc")``."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return "file", unquote(parsed.path)
    return parsed.scheme, parsed.netloc + parsed.path


def _s3_store(bucket: str, storage_options: Mapping[str, Any]) -> Any:
    from obstore.store import S3Store

    options = s3_options(storage_options, "slice_storage_options")
    config: dict[str, Any] = {}
    for ours, theirs in (("region", "region"), ("endpoint_url", "endpoint"),
                         ("access_key_id", "access_key_id"),
                         ("secret_access_key", "secret_access_key"),
                         ("session_token", "session_token")):  # fmt: skip
        if options.get(ours):
            config[theirs] = options[ours]
    if options.get("anonymous"):
        config["skip_signature"] = True
    client: Any = {"allow_http": True} if options.get("allow_http") else {}
    path_style = options.get("force_path_style", "endpoint_url" in options)
    return S3Store(
        bucket, client_options=client, virtual_hosted_style_request=not path_style, **config
    )


def stamp_of(url: str, storage_options: Mapping[str, Any], slice_name: str = "") -> SourceStamp:
    """The file's stamp now (see :class:`SourceStamp`); a missing file is a SliceOpenError."""
    scheme, location = location_of(url)
    name = slice_name or location.rsplit("/", 1)[-1]
    if scheme == "file":
        try:
            status = os.stat(location)
        except OSError as error:
            raise SliceOpenError(name, f"file not found: {location} ({error.strerror})") from None
        return SourceStamp(url, size=status.st_size, mtime_ns=status.st_mtime_ns)
    import obstore

    bucket, _, key = location.partition("/")
    try:
        meta = obstore.head(_s3_store(bucket, storage_options), key)
    except FileNotFoundError:
        raise SliceOpenError(name, f"object not found: {url}") from None
    except Exception as error:  # any failure to reach the object: this slice cannot be used
        raise SliceOpenError(name, f"cannot be read: {_first_line(error)}") from error
    return SourceStamp(url, size=meta["size"], etag=meta["e_tag"])


def open_virtual_slice(
    url: str, slice_name: str, storage_options: Mapping[str, Any], group: str | None = None
) -> VirtualSlice:
    """Parse a file into a :class:`VirtualSlice` (see the module docstring)."""
    stamp = stamp_of(url, storage_options, slice_name)
    scheme, location = location_of(url)
    registry, kind = _registry_and_kind(url, slice_name, storage_options)
    try:
        dataset, store, store_group = _parsed(kind, url, registry, group, slice_name)
    except (SliceOpenError, SliceValidationError):
        raise
    except Exception as error:  # the parser refused the file: name the variable and filter
        raise _parse_error(error, kind, scheme, location, slice_name) from error
    return _virtual_slice(url, dataset, stamp, store, store_group, slice_name)


def _virtual_slice(
    url: str,
    dataset: xr.Dataset,
    stamp: SourceStamp,
    store: Any,
    store_group: str | None,
    slice_name: str,
) -> VirtualSlice:
    references = frozenset(
        str(name) for name, variable in dataset.variables.items() if _is_reference(variable)
    )
    for name in sorted(references):
        _refuse_inlined(dataset.variables[name], name, slice_name)
    return VirtualSlice(url, dataset, references, stamp, store, store_group)


def _parse_error(
    error: Exception, kind: str, scheme: str, location: str, slice_name: str
) -> SliceValidationError:
    """The parser refused the file: name the variable and filter when h5py can tell them."""
    reason = _unsupported_layout(location) if kind == "hdf5" and scheme == "file" else None
    reason = reason or f"cannot be referenced ({_first_line(error)})"
    return SliceValidationError(slice_name, f"{reason}; {NO_VIRTUAL_HINT}")


def _registry_and_kind(
    url: str, slice_name: str, storage_options: Mapping[str, Any]
) -> tuple[Any, str]:
    """The object-store registry that reaches the file, and the file's kind (by its magic)."""
    scheme, location = location_of(url)
    if scheme == "file":
        from obstore.store import LocalStore

        stores = {"file://": LocalStore()}
        with open(location, "rb") as file:
            magic = file.read(8)
    else:
        import obstore

        bucket, _, key = location.partition("/")
        stores = {f"s3://{bucket}/": _s3_store(bucket, storage_options)}
        magic = bytes(obstore.get_range(stores[f"s3://{bucket}/"], key, start=0, length=8))
    from obspec_utils.registry import ObjectStoreRegistry

    kind = _format_of(magic)
    if kind is None:
        raise SliceOpenError(
            slice_name,
            "is not a NetCDF3, NetCDF4/HDF5 or GRIB file, so it cannot be referenced; "
            + NO_VIRTUAL_HINT,
        )
    return ObjectStoreRegistry(stores), kind


@dataclasses.dataclass(frozen=True)
class VirtualTree:
    """A parsed file with groups: every group (path without slashes at the ends, ``""`` for
    the root; parents before children) as a :class:`VirtualSlice`, all with one stamp."""

    url: str
    groups: Mapping[str, VirtualSlice]
    stamp: SourceStamp

    def stand_in(self) -> xr.DataTree:
        """The tree as the checks see it (see :meth:`VirtualSlice.stand_in`)."""
        return xr.DataTree.from_dict(
            {f"/{path}": parsed.stand_in() for path, parsed in self.groups.items()}
        )


def open_virtual_tree(url: str, slice_name: str, storage_options: Mapping[str, Any]) -> VirtualTree:
    """Parse every group of a NetCDF4/HDF5 file (for a cube of groups, a tree); NetCDF3 and
    GRIB files are refused: they have no groups that map onto a tree's."""
    stamp = stamp_of(url, storage_options, slice_name)
    scheme, location = location_of(url)
    registry, kind = _registry_and_kind(url, slice_name, storage_options)
    if kind != "hdf5":
        what = "NetCDF3" if kind == "netcdf3" else "GRIB"
        raise SliceValidationError(
            slice_name,
            f"is a {what} file, which has no groups: only NetCDF4/HDF5 files can be referenced "
            f"group by group into a tree of groups; {NO_VIRTUAL_HINT}",
        )
    from virtualizarr.parsers import HDFParser

    try:
        whole = HDFParser()(url=url, registry=registry).to_virtual_datatree(loadable_variables=[])
        paths = [node.path.strip("/") for node in whole.subtree]
        groups: dict[str, VirtualSlice] = {}
        for path in paths:
            store = HDFParser(group=path or None)(url=url, registry=registry)
            dataset = _plain_dims(_group_dataset(store))
            groups[path] = _virtual_slice(url, dataset, stamp, store, None, slice_name)
    except (SliceOpenError, SliceValidationError):
        raise
    except Exception as error:  # the parser refused the file: name the variable and filter
        raise _parse_error(error, kind, scheme, location, slice_name) from error
    return VirtualTree(url, groups, stamp)


def has_subgroups(url: str, slice_name: str, storage_options: Mapping[str, Any]) -> bool:
    """Whether a file has groups below its root (a NetCDF4/HDF5 file with groups), asked of a
    cube's first virtual slice: such a file starts a tree. A file that cannot be parsed counts
    as flat (parsing it again says why)."""
    try:
        registry, kind = _registry_and_kind(url, slice_name, storage_options)
        if kind != "hdf5":
            return False
        from virtualizarr.parsers import HDFParser

        store = HDFParser()(url=url, registry=registry)
        return bool(store.to_virtual_datatree(loadable_variables=[]).children)
    except Exception:  # the append parses it again and reports what is wrong
        return False


def _group_dataset(store: Any) -> xr.Dataset:
    """One group's virtual dataset: its coordinates, their bounds and CF time variables
    loaded, the others referenced."""
    probe = store.to_virtual_dataset(loadable_variables=[])
    return _loaded(store.to_virtual_dataset(loadable_variables=_loadable(_plain_dims(probe))))


def _plain_dims(dataset: xr.Dataset) -> xr.Dataset:
    """A group's dimensions by their names: VirtualiZarr names a dimension defined in another
    group (not the root) by its path (``ocean/latitude``), HDF5's dimension scale; xarray and
    NetCDF4 by its name."""
    renamed = {dim: str(dim).rsplit("/", 1)[-1] for dim in dataset.dims if "/" in str(dim)}
    return dataset.rename_dims(renamed) if renamed else dataset


def _format_of(magic: bytes) -> str | None:
    if magic[:3] == b"CDF" and magic[3:4] in (b"\x01", b"\x02", b"\x05"):
        return "netcdf3"
    if magic == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    if magic[:4] == b"GRIB":
        return "grib"
    return None


def _parsed(
    kind: str, url: str, registry: Any, group: str | None, slice_name: str
) -> tuple[xr.Dataset, Any, str | None]:
    """The file's (or its group's) virtual dataset, the parser's store, and the group of the
    store the dataset is (None: its root)."""
    if kind == "grib":
        from gribberish.virtualizarr import GribberishParser

        parser_store = GribberishParser()(url=url, registry=registry)
        tree = parser_store.to_virtual_datatree()
        leaves = [node.path for node in tree.subtree if node.has_data and not node.children]
        chosen = group.strip("/") if group else None
        if chosen is None and len(leaves) != 1:
            raise SliceValidationError(
                slice_name,
                f"holds GRIB messages of several kinds ({', '.join(leaves)}): set virtual_group "
                "to the one to reference, e.g. " + repr(leaves[0].strip("/") if leaves else ""),
            )
        path = "/" + (chosen if chosen is not None else leaves[0].strip("/"))
        if path not in leaves:
            raise SliceValidationError(
                slice_name, f"has no GRIB group {path!r} (its groups: {', '.join(leaves)})"
            )
        return _loaded(tree[path].to_dataset()), parser_store, path.strip("/")
    from virtualizarr.parsers import HDFParser, NetCDF3Parser

    parser = NetCDF3Parser() if kind == "netcdf3" else HDFParser(group=group)
    if kind == "netcdf3" and group:
        raise SliceValidationError(slice_name, "is NetCDF3, which has no groups (virtual_group)")
    store = parser(url=url, registry=registry)
    return _group_dataset(store), store, None


def _loadable(dataset: xr.Dataset) -> list[str]:
    """The variables stored natively: coordinates, their bounds and CF time variables."""
    names = {str(name) for name in dataset.coords}
    for name in list(names):
        bounds = dataset.variables[name].attrs.get("bounds")
        if isinstance(bounds, str) and bounds in dataset.variables:
            names.add(bounds)
    for key, variable in dataset.variables.items():
        if " since " in str(variable.attrs.get("units", "")):
            names.add(str(key))
    return sorted(names)


def _loaded(dataset: xr.Dataset, *, load: bool = True) -> xr.Dataset:
    """The loaded variables in memory (VirtualiZarr opens them lazily; ``load`` False: left
    lazy), with the storage settings of the file dropped: versioncube stores them its own way."""
    for variable in dataset.variables.values():
        if not _is_reference(variable):
            loaded = variable.load() if load else variable
            for key in ("chunks", "preferred_chunks", "compressors", "filters", "serializer",
                        "shards", "fill_value"):  # fmt: skip
                loaded.encoding.pop(key, None)
    return dataset


def _is_reference(variable: xr.Variable) -> bool:
    from virtualizarr.manifests import ManifestArray

    return isinstance(variable.data, ManifestArray)


def _refuse_inlined(variable: xr.Variable, name: str, slice_name: str) -> None:
    """Variable-length strings are copied into the manifest, not referenced: refuse them."""
    if variable.dtype.kind in "OTU" or str(variable.data.metadata.data_type) in ("string",):
        raise SliceValidationError(
            slice_name,
            f"variable {name!r} holds variable-length strings, which cannot be referenced "
            f"(they would be copied into the manifest); {NO_VIRTUAL_HINT}",
        )


def _unsupported_layout(path: str) -> str | None:
    """The first variable whose HDF5 filter cannot be referenced, as a reason, or None."""
    import h5py

    found: list[str] = []

    def visit(name: str, node: Any) -> None:
        if found or not isinstance(node, h5py.Dataset):
            return
        filters = {str(key) for key in node._filters}
        if node.dtype.kind == "O" or h5py.check_string_dtype(node.dtype) is not None:
            info = h5py.check_string_dtype(node.dtype)
            if info is not None and info.length is None:
                found.append(f"variable {name!r} holds variable-length strings")
                return
        for key in sorted(filters):
            if key in UNSUPPORTED_FILTERS:
                found.append(f"variable {name!r} uses the {UNSUPPORTED_FILTERS[key]} filter")
                return

    try:
        with h5py.File(path, "r") as file:
            file.visititems(visit)
    except Exception:  # not readable with h5py either: the parser's own error says why
        return None
    if not found:
        return None
    return f"{found[0]}, which virtual references cannot decode"


def settled_attrs(attrs: Mapping[str, Any], dtype: np.dtype) -> dict[str, Any]:
    """A referenced variable's attributes with one fill convention: a ``_FillValue`` that
    contradicts ``missing_value`` becomes ``missing_value`` (xarray refuses to write the pair,
    and warns on reading it), as native cubes settle it."""
    settled = dict(attrs)
    if "missing_value" not in settled or "_FillValue" not in settled:
        return settled
    fill = decode_fill_value(settled["_FillValue"], dtype)
    missing = np.asarray(settled["missing_value"])
    if missing.size == 1 and not _same_number(fill, missing.item()):
        settled["_FillValue"] = encode_fill_value(missing.item(), dtype)
    return settled


def decoded_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes as xarray's CF decoding takes them (``_FillValue`` as a number)."""
    decoded = dict(attrs)
    if isinstance(decoded.get("_FillValue"), str):
        decoded["_FillValue"] = decode_fill_value(decoded["_FillValue"], np.dtype("float64"))
    return decoded


def encode_fill_value(value: Any, dtype: np.dtype) -> Any:
    """A ``_FillValue`` as Zarr v3 attributes store it (xarray's way: base64 of a float64)."""
    if np.dtype(dtype).kind == "f":
        return base64.standard_b64encode(struct.pack("<d", float(value))).decode()
    return int(value)


def decode_fill_value(value: Any, dtype: np.dtype) -> Any:
    if isinstance(value, str):
        try:
            return struct.unpack("<d", base64.standard_b64decode(value))[0]
        except (ValueError, struct.error):
            return value
    return value


def cf_attrs(attrs: Mapping[str, Any], dtype: np.dtype) -> dict[str, Any]:
    """The CF attributes that change what the stored values mean, settled and decoded."""
    settled = decoded_attrs(settled_attrs(attrs, dtype))
    return {key: settled[key] for key in CF_KEYS if key in settled}


def _same_number(a: Any, b: Any) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))
    except TypeError:
        return bool(a == b)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
