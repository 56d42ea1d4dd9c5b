"""Writing a virtual slice's references into a cube's arrays (of its root, or of one group).

:func:`create_array` makes the cube's array for a referenced variable (the file's dtype,
chunks, codecs and fill value), :func:`write_references` points its chunks at the file's,
and :func:`append_references` grows the arrays along the append dimension and points the new
chunks at the file's. The checks that make this safe are in :mod:`versioncube.layout.virtual`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import icechunk
import numpy as np
import xarray as xr

from versioncube.errors import SliceOpenError, SliceValidationError, VersionCubeError
from versioncube.slices.virtual import SourceStamp, settled_attrs, stamp_of
from versioncube.store.containers import ContainerSpec
from versioncube.store.repository import repository_config
from versioncube.store.upstream import buffer_prototype, inlined_chunks, run_on_zarr_loop


def rehearse_first(
    change: Callable[[icechunk.Session], Any],
    append_dim: str,
    container: ContainerSpec,
    slice_name: str,
) -> None:
    """Run a first slice's change (creating the cube afresh) in a throwaway in-memory
    repository with its container, so that what fails only while writing fails before the
    real repository is created."""
    config = repository_config(append_dim, [container])
    probe = icechunk.Repository.create(icechunk.in_memory_storage(), config=config)
    try:
        change(probe.writable_session("main"))
    except VersionCubeError:
        raise
    except Exception as error:  # whatever the writers raise: this file cannot start a cube
        from versioncube.display.format import describe

        raise SliceValidationError(
            slice_name, f"cannot be referenced as the cube's first slice: {describe(error)}"
        ) from error


def check_unchanged(
    url: str, stamp: SourceStamp, files: Mapping[str, Any], slice_name: str
) -> None:
    """Refuse a file that changed since it was stamped (before parsing): its references
    would point into other bytes."""
    change = stamp.differs(stamp_of(url, files, slice_name))
    if change is not None:
        raise SliceOpenError(
            slice_name,
            f"changed while it was being appended ({change}): nothing was committed; "
            "re-run to reference it as it is now",
        )


def array_path(group: str, name: str) -> str:
    """The path of a group's array in the store (``""``: the root)."""
    return f"{group}/{name}" if group else name


def stored_arrays(
    store: Any, names: Iterable[str], group: str = "", *, writable: bool = True
) -> dict[str, Any]:
    """The cube's zarr arrays of ``names`` in ``group`` (writable, or read-only for checks)."""
    import zarr

    mode: Literal["r", "r+"] = "r+" if writable else "r"
    return {
        name: zarr.open_array(store, path=array_path(group, name), mode=mode)
        for name in sorted(names)
    }


def append_references(
    store: Any,
    arrays: Mapping[str, Any],
    variables: Mapping[str, xr.Variable],
    cube_size: int,
    dim: str,
    checksum: Any,
    slice_name: str,
    group: str = "",
) -> None:
    """Grow each array along ``dim`` by its variable's length and point the new chunks at the
    file's (the arrays are checked to be aligned with their chunks, see check_references)."""
    for name, variable in variables.items():
        array = arrays[name]
        axis = variable.dims.index(dim)
        shape = list(array.shape)
        shape[axis] = cube_size + variable.shape[axis]
        array.resize(tuple(shape))
        chunk = int(array.metadata.chunks[axis])
        write_references(
            store, name, variable, cube_size // chunk, dim, checksum, slice_name, group
        )


def create_array(store: Any, name: str, variable: xr.Variable, group: str = "") -> None:
    """The cube's array for a referenced variable: the file's dtype, chunks, codecs and fill
    value, and its attributes with one fill convention."""
    import zarr
    from virtualizarr.codecs import extract_codecs

    metadata = variable.data.metadata
    filters, serializer, compressors = extract_codecs(metadata.codecs)
    parent = zarr.open_group(store, path=group, mode="r+")
    parent.create_array(
        name,
        shape=metadata.shape,
        chunks=metadata.chunks,
        dtype=metadata.data_type.to_native_dtype(),
        filters=filters,
        compressors=compressors,
        serializer=serializer or "auto",
        fill_value=metadata.fill_value,
        dimension_names=tuple(map(str, variable.dims)),
        attributes=settled_attrs(variable.attrs, variable.dtype),
    )


def write_references(
    store: Any,
    name: str,
    variable: xr.Variable,
    offset: int,
    dim: str,
    checksum: Any,
    slice_name: str,
    group: str = "",
) -> None:
    """Point the chunks of ``name`` (in ``group``) at the file's chunks, ``offset`` chunks
    along ``dim``."""
    path = array_path(group, name)
    manifest = variable.data.manifest
    grid = tuple(manifest.shape_chunk_grid)
    count = int(np.prod(grid, dtype=int))
    locations = [""] * count
    offsets = np.zeros(count, dtype=np.uint64)
    lengths = np.zeros(count, dtype=np.uint64)
    inlined = inlined_chunks(manifest)
    for index, entry in manifest.iter_refs():
        if tuple(index) in inlined:
            continue
        flat = int(np.ravel_multi_index(index, grid)) if grid else 0
        locations[flat] = entry["path"]
        offsets[flat] = entry["offset"]
        lengths[flat] = entry["length"]
    shift = tuple(offset if axis_dim == dim else 0 for axis_dim in variable.dims)
    if inlined:  # tiny chunks the parser copied: stored natively, as they are encoded
        run_on_zarr_loop(_store_chunks(store, path, inlined, shift))
    if not any(locations):
        return
    failed = store.set_virtual_refs_arr(
        array_path=path,
        chunk_grid_shape=grid,
        locations=locations,
        offsets=offsets,
        lengths=lengths,
        validate_containers=True,
        arr_offset=shift if any(shift) else None,
        checksum=checksum,
    )
    if failed:
        raise SliceValidationError(
            slice_name,
            f"{len(failed)} references of {name!r} fall outside the cube's virtual chunk "
            "containers (virtual_containers)",
        )


async def _store_chunks(
    store: Any, name: str, chunks: Mapping[tuple[int, ...], bytes], shift: tuple[int, ...]
) -> None:

    prototype = buffer_prototype()
    for index, data in chunks.items():
        moved = tuple(i + s for i, s in zip(index, shift, strict=True))
        key = f"{name}/c" + "".join(f"/{i}" for i in moved)
        await store.set(key, prototype.buffer.from_bytes(data))
