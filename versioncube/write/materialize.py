"""Materialize: copy referenced (virtual) chunks into the repository, in one commit.

A cube of virtual slices reads its data from the archive files it references. Materializing
copies the referenced chunks of the branch tip (all of them, or those of a label range) into
native chunks: the raw, still-encoded bytes are fetched through Icechunk (which refuses a file
that changed since it was referenced) and stored unchanged under the array's own codecs, so
the values read back identical, and the cube no longer needs the archive (nor credentials for
it) for those rows. Earlier versions keep their references: they still need the files.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import icechunk
import numpy as np
import xarray as xr

from versioncube.display import html
from versioncube.display.format import human_size, plural
from versioncube.display.json import label_to_json
from versioncube.display.results import Result
from versioncube.errors import VersionError
from versioncube.store.commit import AlreadyCommitted, CommitOptions, Staged, commit_change
from versioncube.store.dataset import open_store
from versioncube.store.groups import group_paths
from versioncube.store.repository import CubeStore
from versioncube.store.upstream import buffer_prototype, run_on_zarr_loop
from versioncube.versions.record import CommitRecord

#: Chunks fetched and stored at once.
BATCH = 64
VIRTUAL_CHUNK = 2  # icechunk.ChunkType.virtual's value in array_chunk_iterator's kinds


@dataclasses.dataclass(frozen=True)
class MaterializeResult(Result):
    """What ``materialize`` copied (nothing is committed when there was nothing to copy)."""

    snapshot_id: str | None
    chunks: int
    bytes: int
    files: list[str]
    record: CommitRecord | None

    def describe(self) -> str:
        if self.snapshot_id is None or self.record is None:
            return "nothing to materialize: no referenced chunks in the selected rows"
        return (
            f"materialized {plural(self.chunks, 'chunk')} ({human_size(self.bytes)}) from "
            f"{plural(len(self.files), 'file')}: {self.record.extent()} "
            f"(snapshot {self.snapshot_id})"
        )

    def html_title(self) -> str:
        return "Materialize"

    def _repr_html_(self) -> str:
        if self.snapshot_id is None or self.record is None:
            return html.card(self.html_kind(), "materialize", html.muted(self.describe()))
        details = [
            ("copied", f"{plural(self.chunks, 'chunk')} ({human_size(self.bytes)})"),
            ("rows", self.record.extent()),
            ("snapshot", self.snapshot_id),
        ]
        files = html.section("From files", html.lines(self.files), count=len(self.files))
        return html.card(self.html_kind(), "materialize", "", html.facts(details), files)


@dataclasses.dataclass(frozen=True)
class _Copied:
    record: CommitRecord
    chunks: int
    bytes: int
    files: list[str]


@dataclasses.dataclass(frozen=True)
class MaterializeChange:
    """Copy the referenced chunks of rows ``[start, stop]`` (labels; None: open end)."""

    store: CubeStore
    append_dim: str
    start: Any
    stop: Any

    def __call__(self, session: icechunk.Session) -> Staged[_Copied] | AlreadyCommitted:
        # every group (the levels of a pyramid, the nodes of a tree; a flat cube is its root)
        groups = {
            path: open_store(
                session.store,
                path or None,
                where=self.store.where,
                chunks=None,
                create_default_indexes=False,
            )
            for path in group_paths(session.store) or [""]
        }
        dim = self.append_dim
        along = [dataset for dataset in groups.values() if dim in dataset.dims]
        labelled = [dataset for dataset in along if dim in dataset.variables]
        size = along[0].sizes[dim] if along else 0
        dataset = labelled[0] if labelled else xr.Dataset()
        first, stop = 0, size
        if dim in dataset.variables and (self.start is not None or self.stop is not None):
            labels = dataset.variables[dim].values
            chosen = np.ones(labels.shape, bool)
            if self.start is not None:
                chosen &= labels >= _as_label(self.start, labels, "--from")
            if self.stop is not None:
                chosen &= labels <= _as_label(self.stop, labels, "--to")
            rows = np.nonzero(chosen)[0]
            if rows.size == 0:
                return AlreadyCommitted(session.snapshot_id)
            first, stop = int(rows[0]), int(rows[-1]) + 1
        whole = (first, stop) == (0, size)
        arrays: list[tuple[str, int | None]] = []
        for path, group in groups.items():
            for name, variable in group.variables.items():
                dims = tuple(map(str, variable.dims))
                array = f"{path}/{name}" if path else str(name)
                if dim in dims:
                    arrays.append((array, dims.index(dim)))
                elif whole:
                    arrays.append((array, None))
        chunks, copied, files = run_on_zarr_loop(_copy(session.store, arrays, first, stop))
        if not chunks:
            return AlreadyCommitted(session.snapshot_id)
        labels_range = None
        if dim in dataset.variables and stop > first:
            values = dataset.variables[dim].values
            labels_range = (label_to_json(values[first]), label_to_json(values[stop - 1]))
        record = CommitRecord(
            operation="materialize",
            slice=None,
            slice_name="",
            append_dim=dim,
            index_range=(first, stop),
            labels=labels_range,
        )
        message = (
            f"{record.message()} ({plural(chunks, 'chunk')} from {plural(len(files), 'file')})"
        )
        payload = _Copied(record, chunks, copied, sorted(files))
        return Staged(message, {}, payload, "materialize", trailer=record.trailer())


def _as_label(text: Any, labels: np.ndarray, option: str) -> Any:
    """A label given as text (or a value) in the dtype of the cube's labels."""
    try:
        if labels.dtype.kind == "M":
            return np.datetime64(text)
        return labels.dtype.type(text)
    except (TypeError, ValueError):
        raise VersionError(
            f"{option} {text!r} is not a label of the cube's kind ({labels.dtype})"
        ) from None


async def _copy(
    store: Any, arrays: list[tuple[str, int | None]], first: int, stop: int
) -> tuple[int, int, set[str]]:
    """Fetch and store, unchanged, the virtual chunks of ``arrays`` in rows ``[first, stop)``
    (all chunks of arrays without the append axis)."""
    import zarr

    prototype = buffer_prototype()
    keys: list[str] = []
    files: set[str] = set()
    for name, axis in arrays:
        array = await zarr.api.asynchronous.open_array(store=store, path=name, mode="r")
        encoding = array.metadata.chunk_key_encoding
        length = int(array.metadata.chunks[axis]) if axis is not None and array.ndim else 1
        async for coords, kinds, paths, _, _, _ in store.array_chunk_iterator(name):
            for index, kind, path in zip(coords, kinds, paths, strict=True):
                if int(kind) != VIRTUAL_CHUNK:
                    continue
                if axis is not None:
                    row = int(index[axis]) * length
                    if row + length <= first or row >= stop:
                        continue
                keys.append(f"{name}/" + encoding.encode_chunk_key(tuple(map(int, index))))
                files.add(path)
    copied = 0
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]
        buffers = await asyncio.gather(*(store.get(key, prototype) for key in batch))
        await asyncio.gather(
            *(store.set(key, buffer) for key, buffer in zip(batch, buffers, strict=True))
        )
        copied += sum(len(buffer) for buffer in buffers)
    return len(keys), copied, files


def materialize(
    store: CubeStore,
    append_dim: str,
    start: Any = None,
    stop: Any = None,
    options: CommitOptions | None = None,
) -> MaterializeResult:
    """Copy the referenced chunks of the branch tip (or of labels ``start`` .. ``stop``) into
    the repository in one commit (see the module docstring)."""
    change = MaterializeChange(store, append_dim, start, stop)
    committed = commit_change(
        store.repository, store.target, store.branch, change, options or CommitOptions()
    )
    if committed.payload is None:
        return MaterializeResult(None, 0, 0, [], None)
    done = committed.payload
    return MaterializeResult(
        committed.snapshot_id, done.chunks, done.bytes, done.files, done.record
    )
