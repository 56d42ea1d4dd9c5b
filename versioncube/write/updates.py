"""Writes by label along the append dimension, and deletes of a label range: one commit each.

A slice is written by its append labels, in one of four modes (zcollection's names where the
meaning is the same):

==============  =================================================================================
mode            what happens to the cube's labels
==============  =================================================================================
``upsert``      labels already in the cube are overwritten, new ones are inserted in order (or
                appended after the last); all other labels are kept
``time_series`` every cube label within [first, last] of the slice is removed and the slice's
                labels put in their place (the window may hold fewer or more rows afterwards)
``replace``     strict: every label must be in the cube; their values are overwritten, no row
                moves (the cheapest: only the chunks holding them are rewritten)
``insert``      new labels only, placed in order (a late file for a gap); refused if any is in
                the cube already
==============  =================================================================================

and :func:`delete_labels` removes every label within [first, last].

Every operation is a *change* (:class:`WriteChange`, :class:`DeleteChange`) handed to the commit
loop (:func:`versioncube.store.commit.commit_change`): it runs in a fresh writable session on the
branch tip, reads the cube's labels there, plans where every row of the cube after it comes from
(:class:`RowPlan`: an old row, a row of the slice), writes, and is committed once. After a
conflict it runs again on the new tip, re-validated there; it never merges chunks.

The slice is checked as an append checks it (variables, dims, dtypes, grid, packing, labels exact
in the stored units, ``append_step``: the labels next to the new rows must follow it), and its
values are encoded with the cube's stored encodings exactly as an append encodes them
(:func:`versioncube.write.in_place.stored_values`); the append labels are written explicitly.
Global attributes follow ``attrs_update_mode`` as on append.

How the rows are written (:func:`apply_plan`), per array along the append dimension, in units of
its chunks along that dimension (shards when sharded, which is what Icechunk stores):

* a chunk whose rows all stay where they were is not touched;
* a chunk whose rows all come, in order, from one chunk of the cube shifted by a whole number of
  chunks is *moved*: its reference is re-pointed (``Session.reindex_array``), no data is read or
  written (an insert or delete of whole chunks);
* every other chunk is written whole, its rows read from the cube (as stored) or taken from the
  slice (encoded).

The slice ledger (:mod:`versioncube.versions.ledger`) follows in the same commit: the entries of
slices whose rows moved get their new rows, an entry whose rows were all removed is dropped (so
appending that slice again is not refused), and the written slice gets an entry with its content
stamp: writing the same slice again is a no-op.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import icechunk
import numpy as np
import xarray as xr
import zarr

from versioncube.config.outline import ResolvedOutline
from versioncube.display import html, palette
from versioncube.display.format import format_label, human_size, plural
from versioncube.display.json import label_to_json
from versioncube.display.results import Result
from versioncube.errors import (
    CubeNotFoundError,
    LabelRangeError,
    SliceValidationError,
    VersionCubeError,
)
from versioncube.layout.attrs import has_expressions, merged_attrs
from versioncube.layout.decoding import DecodedSlice
from versioncube.layout.groups import (
    GroupsOutline,
    grouped_slice,
    plan_grouped,
    read_groups_outline,
)
from versioncube.layout.outline import CubeOutline, read_outline
from versioncube.layout.tailoring import tailor_slice
from versioncube.layout.validation import check_steps, like, plan_append
from versioncube.slices.identity import IdentifiedSlice, SliceLike, slice_ref
from versioncube.slices.opening import open_slice
from versioncube.store.commit import (
    AlreadyCommitted,
    CommitOptions,
    Committed,
    Staged,
    commit_change,
)
from versioncube.store.groups import tree_path
from versioncube.store.translate import translated
from versioncube.versions.ledger import Ledger, LedgerEntry
from versioncube.versions.record import CommitRecord
from versioncube.write.append import (
    Appender,
    PreparedSlice,
    SliceNames,
    flat_decoded,
    prepared,
    tree_or_dataset,
    write_evaluated_attrs,
)
from versioncube.write.grouped import GroupedAppender, configured_groups, group_attrs
from versioncube.write.in_place import stored_values

WriteMode = Literal["append", "upsert", "time_series", "replace", "insert"]
#: The modes that write by label (``append`` is the append pipeline's).
UPDATE_MODES: tuple[str, ...] = ("upsert", "time_series", "replace", "insert")
WRITE_MODES: tuple[str, ...] = ("append", *UPDATE_MODES)

WriteStatus = Literal["written", "skipped", "nothing to delete"]


# -- results -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WriteResult(Result):
    """What a write by label (or a delete) did: its commit, its record and what it cost."""

    operation: str
    slice_name: str
    status: WriteStatus
    snapshot_id: str | None
    record: CommitRecord | None
    chunks_written: int = 0
    chunks_moved: int = 0
    bytes_written: int = 0  # uncompressed
    elapsed: float = 0.0

    def describe(self) -> str:
        """``upsert 2024-03-01.nc: time 2024-03-01 .. 2024-03-07 (3 replaced, 4 inserted);
        9 chunks written (1.2 MB), 40 moved (snapshot X)``."""
        name = f" {self.slice_name}" if self.slice_name else ""
        if self.status == "skipped":
            return (
                f"skipped {self.operation}{name}: the cube holds this slice with this content "
                f"already (snapshot {self.snapshot_id})"
            )
        if self.record is None:
            return f"{self.operation}{name}: nothing to delete, no label in the range"
        return (
            f"{self.operation}{name}: {self.record.extent()}; {self.cost()} "
            f"(snapshot {self.snapshot_id})"
        )

    def cost(self) -> str:
        """``9 chunks written (1.2 MB), 40 moved``."""
        text = f"{plural(self.chunks_written, 'chunk')} written ({human_size(self.bytes_written)})"
        return text + (f", {self.chunks_moved} moved" if self.chunks_moved else "")

    def html_title(self) -> str:
        return self.operation.capitalize()

    def _repr_html_(self) -> str:
        details: list[tuple[str, object]] = []
        if self.record is not None:
            details.append(("labels", self.record.extent()))
            details.append(("cost", self.cost()))
            if self.record.size is not None:
                details.append(("cube length after", self.record.size))
        if self.snapshot_id:
            details.append(("snapshot", self.snapshot_id))
        accent = (
            palette.OTHER_OPERATION
            if self.record is None
            else palette.operation_color(self.operation)
        )
        title = f"{self.operation} {self.slice_name}".strip()
        body = html.facts(details) if details else html.muted(self.describe())
        return html.card(self.html_kind(), title, "", body, accent=accent)


@dataclasses.dataclass(frozen=True)
class _Written:
    record: CommitRecord
    stats: WriteStats


@dataclasses.dataclass
class WriteStats:
    """What writing a plan cost."""

    written: int = 0  # chunk objects written
    moved: int = 0  # chunk references moved
    bytes: int = 0  # uncompressed bytes written


# -- planning ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RowPlan:
    """Where every row of the cube after an operation comes from.

    ``from_old[i]`` is the cube's row that becomes row ``i`` (-1: none), ``from_slice[i]`` the
    slice's row (-1: none); exactly one of them is set for each row.
    """

    old_size: int
    labels: np.ndarray  # the labels after the operation (decoded)
    from_old: np.ndarray
    from_slice: np.ndarray
    counts: dict[str, int]
    removed: np.ndarray  # the labels removed (deletes, time_series windows)
    #: for the label coordinate: the cube's row with the same label (-1: a new label)
    same_label: np.ndarray

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    @property
    def moves(self) -> bool:
        """Whether any kept row moves (or the length changes)."""
        kept = self.from_old >= 0
        return self.size != self.old_size or bool(
            np.any(self.from_old[kept] != np.nonzero(kept)[0])
        )

    def slice_rows(self) -> tuple[int, int] | None:
        """The rows the slice's labels span after the operation, ``[first, last + 1)``."""
        rows = np.nonzero(self.from_slice >= 0)[0]
        return (int(rows[0]), int(rows[-1]) + 1) if rows.size else None


def _positions(sorted_labels: np.ndarray, values: np.ndarray, increasing: bool) -> np.ndarray:
    """The row of each value among ``sorted_labels`` (-1: not there)."""
    n = sorted_labels.shape[0]
    if n == 0:
        return np.full(values.shape, -1, dtype=np.int64)
    ordered = sorted_labels if increasing else sorted_labels[::-1]
    index = np.searchsorted(ordered, values)
    clipped = np.minimum(index, n - 1)
    found = (index < n) & (ordered[clipped] == values)
    rows = clipped if increasing else n - 1 - clipped
    return np.where(found, rows, -1).astype(np.int64)


def _comparable(values: np.ndarray, cube_labels: np.ndarray) -> np.ndarray:
    """Slice labels as the cube's kind of label (datetime64 of the cube's unit, cftime)."""
    if cube_labels.dtype.kind == "M" and values.dtype.kind == "M":
        return values.astype(cube_labels.dtype)
    if (
        cube_labels.size
        and values.size
        and (hasattr(cube_labels[0], "calendar") or hasattr(values[0], "calendar"))
    ):
        return np.array([like(value, cube_labels[0]) for value in values], dtype=object)
    return values


def plan_write(
    mode: str, old: np.ndarray, new: np.ndarray, increasing: bool, slice_name: str, dim: str
) -> RowPlan:
    """Plan writing a slice with labels ``new`` (checked: strictly ordered) into a cube with
    labels ``old`` in ``mode`` (see the module docstring); refuses what the mode forbids."""
    new = _comparable(new, old)
    at = _positions(old, new, increasing)
    present = at >= 0
    if mode == "replace" and not present.all():
        missing = new[~present]
        raise SliceValidationError(
            slice_name,
            f"{plural(int(missing.size), f'{dim} label')} ({_preview(missing)}) not in the cube: "
            "--mode replace only rewrites labels the cube has (use --mode upsert to insert "
            "new ones too)",
        )
    if mode == "insert" and present.any():
        found = new[present]
        raise SliceValidationError(
            slice_name,
            f"{plural(int(found.size), f'{dim} label')} ({_preview(found)}) in the cube "
            "already: --mode insert only adds new labels (use --mode upsert to overwrite "
            "them, or --mode replace)",
        )
    keep = np.ones(old.shape, bool)
    if mode == "time_series":
        low, high = (new[0], new[-1]) if increasing else (new[-1], new[0])
        keep = ~((old >= low) & (old <= high))
    else:
        keep[at[present]] = False
    removed_rows = np.nonzero(~keep)[0]
    removed = old[np.setdiff1d(removed_rows, at[present])] if mode == "time_series" else old[:0]
    plan = _merged(old, keep, new, increasing)
    last = old[-1] if old.size else None
    after = np.zeros(new.shape, bool)
    if last is not None:
        after = (new > last) if increasing else (new < last)
    counts = {
        "replaced": int(present.sum()),
        "inserted": int((~present & ~after).sum()),
        "appended": int((~present & after).sum()),
        "removed": int(removed.size),
    }
    return dataclasses.replace(plan, counts=counts, removed=removed)


def plan_delete(old: np.ndarray, low: Any, high: Any) -> RowPlan:
    """Plan removing every label within [low, high] (``low <= high``)."""
    keep = ~((old >= low) & (old <= high))
    plan = _merged(old, keep, old[:0], True)
    removed = old[~keep]
    return dataclasses.replace(plan, counts={"removed": int(removed.size)}, removed=removed)


def _merged(old: np.ndarray, keep: np.ndarray, new: np.ndarray, increasing: bool) -> RowPlan:
    kept = np.nonzero(keep)[0]
    labels = np.concatenate([old[kept], new])
    if new.size == 0:  # a delete: the kept rows in their order
        order = np.arange(labels.size)
    else:
        order = np.argsort(labels, kind="stable")
        if not increasing:
            order = order[::-1]
    from_old = np.concatenate([kept, np.full(new.shape, -1)]).astype(np.int64)[order]
    from_slice = np.concatenate([np.full(kept.shape, -1), np.arange(new.size)]).astype(np.int64)
    from_slice = from_slice[order]
    labels = labels[order]
    same = from_old.copy()
    if new.size:
        newcomers = from_slice >= 0
        same[newcomers] = _positions(old, labels[newcomers], increasing)
    return RowPlan(old.shape[0], labels, from_old, from_slice, {}, old[:0], same)


def _preview(values: np.ndarray) -> str:
    shown = ", ".join(format_label(value) for value in values[:3])
    return shown + (", ..." if values.size > 3 else "")


# -- writing -------------------------------------------------------------------------------------


def apply_plan(
    session: icechunk.Session,
    base: Any,
    cube: CubeOutline,
    plan: RowPlan,
    values: Mapping[str, np.ndarray],
    path: str = "",
    stats: WriteStats | None = None,
) -> WriteStats:
    """Write the plan into the session: every array along the append dimension (see the
    module docstring). ``base`` is a read-only store on the session's snapshot (the old rows
    are read there); ``values`` are the slice's variables as stored (append axis first moved
    to where the array has it). ``path`` is the group written (a level of a pyramid, a node of
    a tree; the root by default); ``stats`` adds to the cost counted so far."""
    dim = cube.append_dim
    stats = stats if stats is not None else WriteStats()
    group = zarr.open_group(session.store, path=path, mode="r+", zarr_format=3)
    old_group = zarr.open_group(base, path=path, mode="r", zarr_format=3)
    for name, variable in sorted(cube.variables.items()):
        if dim not in variable.dims:
            continue
        axis = variable.dims.index(dim)
        array = group[name]
        assert isinstance(array, zarr.Array)
        old_array = old_group[name]
        source = plan.same_label if name == dim else plan.from_old
        _write_array(session, array, old_array, axis, plan, source, values.get(name), stats)
    return stats


def _write_array(
    session: icechunk.Session,
    array: zarr.Array[Any],
    old_array: Any,
    axis: int,
    plan: RowPlan,
    from_old: np.ndarray,
    new_values: np.ndarray | None,
    stats: WriteStats,
) -> None:
    old_n, new_n = plan.old_size, plan.size
    stored = array.shards or array.chunks  # what Icechunk keeps one reference per
    chunk = int(stored[axis])
    grid = [-(-size // length) for size, length in zip(array.shape, stored, strict=True)]
    others = int(np.prod([n for i, n in enumerate(grid) if i != axis], dtype=int))
    count = -(-new_n // chunk)
    padded = np.full(count * chunk, -1, dtype=np.int64)
    padded[:new_n] = from_old
    valid = np.zeros(count * chunk, bool)
    valid[:new_n] = True
    shift = np.where(padded >= 0, np.arange(count * chunk) - padded, np.iinfo(np.int64).min)
    rows = shift.reshape(count, chunk)
    inside = valid.reshape(count, chunk)
    first = rows[:, 0]
    whole = np.all((rows == first[:, None]) | ~inside, axis=1) & (first != np.iinfo(np.int64).min)
    whole &= np.all((padded.reshape(count, chunk) >= 0) | ~inside, axis=1)
    movable = whole & (first % chunk == 0)
    moves = {int(q - first[q] // chunk): int(q) for q in np.nonzero(movable & (first != 0))[0]}
    sources = {target: source for source, target in moves.items()}
    rewrite = [int(q) for q in np.nonzero(~movable)[0]]
    path = array.path
    shape = list(array.shape)
    if new_n > old_n:
        shape[axis] = new_n
        array.resize(tuple(shape))
    if moves:

        def forward(index: Any) -> list[int] | None:
            coords = list(index)
            target = moves.get(coords[axis])
            if target is None:
                return None
            coords[axis] = target
            return coords

        def backward(index: Any) -> list[int]:
            # a moved-into position whose source holds no chunk (all fill) is cleared
            coords = list(index)
            coords[axis] = sources.get(coords[axis], coords[axis])
            return coords

        session.reindex_array("/" + path, forward, backward)
        stats.moved += len(moves) * others
    for start, stop in _runs(rewrite):
        low, high = start * chunk, min(stop * chunk, new_n)
        block = _rows_for(
            old_array, axis, from_old[low:high], plan.from_slice[low:high], new_values
        )
        where = [slice(None)] * array.ndim
        where[axis] = slice(low, high)
        array[tuple(where)] = block
        stats.written += (stop - start) * others
        stats.bytes += int(block.nbytes)
    if new_n < old_n:
        shape[axis] = new_n
        array.resize(tuple(shape))


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted numbers as ``[start, stop)``."""
    runs: list[tuple[int, int]] = []
    for number in numbers:
        if runs and runs[-1][1] == number:
            runs[-1] = (runs[-1][0], number + 1)
        else:
            runs.append((number, number + 1))
    return runs


def _rows_for(
    old_array: Any,
    axis: int,
    from_old: np.ndarray,
    from_slice: np.ndarray,
    new_values: np.ndarray | None,
) -> np.ndarray:
    """The stored values of some rows: read from the cube (in one read), or taken from the
    slice; put together from runs of consecutive rows (one copy)."""
    old_rows = from_old >= 0
    read: np.ndarray | None = None
    low = 0
    if old_rows.any():
        wanted = from_old[old_rows]
        low, high = int(wanted.min()), int(wanted.max()) + 1
        where = [slice(None)] * old_array.ndim
        where[axis] = slice(low, high)
        read = np.asarray(old_array[tuple(where)])
    parts = []
    for start, stop in _source_runs(from_old, from_slice):
        if from_old[start] >= 0:
            assert read is not None
            first = int(from_old[start]) - low
            part = _along(read, axis, first, first + stop - start)
        else:
            assert new_values is not None, "a row from the slice of a variable the slice lacks"
            first = int(from_slice[start])
            part = _along(new_values, axis, first, first + stop - start)
        parts.append(part)
    dtype = read.dtype if read is not None else parts[0].dtype
    return np.concatenate([part.astype(dtype, copy=False) for part in parts], axis=axis)


def _source_runs(from_old: np.ndarray, from_slice: np.ndarray) -> list[tuple[int, int]]:
    """Runs ``[start, stop)`` of rows that come from consecutive rows of one source."""
    source = np.where(from_old >= 0, from_old, -2 - from_slice)  # slice rows as negatives
    step = np.where(from_old >= 0, 1, -1)
    breaks = np.nonzero(source[1:] != source[:-1] + step[:-1])[0] + 1
    edges = [0, *breaks.tolist(), int(source.shape[0])]
    return list(itertools.pairwise(edges))


def _along(values: np.ndarray, axis: int, start: int, stop: int) -> np.ndarray:
    where: list[Any] = [slice(None)] * values.ndim
    where[axis] = slice(start, stop)
    part: np.ndarray = values[tuple(where)]
    return part


# -- the ledger ----------------------------------------------------------------------------------


def moved_entries(ledger: Ledger, plan: RowPlan) -> None:
    """Give the entries of slices whose rows moved their new rows; drop those whose rows were
    all removed (also when no row moves: a time_series window may remove a row and put a new
    one in its place)."""
    if not plan.moves and not plan.removed.size:
        return
    new_row = np.full(plan.old_size, -1, dtype=np.int64)
    kept = plan.from_old >= 0
    new_row[plan.from_old[kept]] = np.nonzero(kept)[0]
    for entry in list(ledger.entries()):
        start, stop = entry.rows
        rows = new_row[max(start, 0) : min(stop, plan.old_size)]
        rows = rows[rows >= 0]
        if rows.size == 0:
            ledger.remove(entry.identity)
            continue
        first, last = int(rows.min()), int(rows.max())
        if (first, last + 1) == (start, stop):
            continue
        labels = None
        if entry.labels is not None:
            labels = (label_to_json(plan.labels[first]), label_to_json(plan.labels[last]))
        ledger.add(dataclasses.replace(entry, rows=(first, last + 1), labels=labels))


# -- the changes ---------------------------------------------------------------------------------


def _labels_of(session: icechunk.Session, dim: str, where: str, path: str = "") -> np.ndarray:
    from versioncube.store.dataset import open_store

    dataset = open_store(
        session.store, path or None, where=where, chunks=None, create_default_indexes=False
    )
    if dim not in dataset.variables:
        raise CubeNotFoundError(
            f"{where} has no {dim!r} label coordinate: writes by label and deletes need one"
        )
    return np.asarray(dataset.variables[dim].values)


def _set_attrs(session: icechunk.Session, attrs: dict[str, Any], path: str = "") -> None:
    group = zarr.open_group(session.store, path=path, mode="r+", zarr_format=3)
    stored = dict(group.attrs)
    if "coordinates" in stored:
        attrs["coordinates"] = stored["coordinates"]
    if attrs != stored:
        group.attrs.put(attrs)


def _record(
    operation: str,
    name: str,
    dim: str,
    plan: RowPlan,
    stats: WriteStats,
    labels: tuple[Any, Any] | None,
    rows: tuple[int, int],
    stamp: str | None = None,
    identity: str | None = None,
) -> CommitRecord:
    return CommitRecord(
        operation=operation,
        slice=identity,
        slice_name=name,
        append_dim=dim,
        index_range=rows,
        labels=(label_to_json(labels[0]), label_to_json(labels[1])) if labels else None,
        stamp=stamp,
        counts={key: count for key, count in plan.counts.items() if count},
        size=plan.size,
        chunks=(stats.written, stats.moved, stats.bytes),
    )


def _ledger_unless_held(
    appender: Appender, session: icechunk.Session, names: SliceNames, rows: int
) -> Ledger | AlreadyCommitted:
    """The cube's ledger in ``session``, caught up with its ``rows``; or AlreadyCommitted when
    it holds this very slice with the same content stamp (another writer was first, or a
    re-run)."""
    ledger = appender.current_ledger(session, rows)
    held = ledger.find(names.for_ledger(ledger))
    if held is not None and held.stamp == names.identified.stamp:
        return AlreadyCommitted(appender.holding_commit(session.snapshot_id, held))
    return ledger


def _staged_write(
    mode: str,
    ref: IdentifiedSlice,
    dim: str,
    plan: RowPlan,
    stats: WriteStats,
    ledger: Ledger,
    session: icechunk.Session,
    groups: GroupsOutline | None = None,
) -> Staged[_Written]:
    """The commit of a write by label: its record (naming the ``groups`` written, for a cube
    of groups), and the slice's ledger entry at its rows, the entries of moved rows moved."""
    rows = plan.slice_rows()
    assert rows is not None
    moved_entries(ledger, plan)
    labels = (plan.labels[rows[0]], plan.labels[rows[1] - 1])
    record = _record(mode, ref.name, dim, plan, stats, labels, rows, ref.stamp, ref.identity)
    if groups is not None:
        record = _grouped_record(record, groups)
    json_labels = (label_to_json(labels[0]), label_to_json(labels[1]))
    ledger.add(LedgerEntry(ref.identity, rows, json_labels, session.snapshot_id, ref.stamp))
    ledger.write(session.store, plan.size)
    payload = _Written(record, stats)
    return Staged(record.message(), {}, payload, f"slice {ref.name}", trailer=record.trailer())


@dataclasses.dataclass(frozen=True)
class WriteChange:
    """Write one slice by label in ``mode`` (see the module docstring), in a fresh session on
    the branch tip (run again on the new tip after a conflict)."""

    appender: Appender
    names: SliceNames
    dataset: DecodedSlice
    outline: ResolvedOutline
    mode: str

    def __call__(self, session: icechunk.Session) -> Staged[_Written] | AlreadyCommitted:
        ref = self.names.identified
        dim, outline, where = self.outline.append_dim, self.outline, self.appender.store.where
        cube = read_outline(session.store, dim, where=where)
        if cube is None:
            raise CubeNotFoundError(f"{where} holds no cube yet: append its first slice first")
        ledger = _ledger_unless_held(self.appender, session, self.names, cube.size)
        if isinstance(ledger, AlreadyCommitted):
            return ledger
        tailored = tailor_slice(self.dataset.dataset, outline, ref.name)
        converted = {name for name in cube.variables if outline.converts(name)}
        checked = plan_append(
            cube,
            tailored,
            ref.name,
            step=outline.step,
            converted=converted,
            raw=self.dataset.raw,
            follows=False,
        )
        to_write = checked.dataset
        if dim not in to_write.variables:
            raise SliceValidationError(ref.name, f"has no {dim!r} labels to write by")
        old = _labels_of(session, dim, where)
        increasing = outline.step.direction > 0
        new = np.asarray(to_write.variables[dim].values)
        plan = plan_write(self.mode, old, new, increasing, ref.name, dim)
        _check_neighbours(plan, dim, outline, ref.name)
        values = {
            str(name): stored_values(str(name), variable, cube)
            for name, variable in to_write.variables.items()
        }
        attrs = merged_attrs(outline.attrs_update_mode, cube.attrs, to_write.attrs, outline.attrs)
        base = _base_store(self.appender, session)
        stats = apply_plan(session, base, cube, plan, values)
        _set_attrs(session, attrs)
        if outline.permit_eval and has_expressions(outline.attrs):
            write_evaluated_attrs(session, outline.attrs, where)
        _check_lengths(session, dim, plan.size, where)
        return _staged_write(self.mode, ref, dim, plan, stats, ledger, session)


@dataclasses.dataclass(frozen=True)
class DeleteChange:
    """Remove every label within [low, high] in one commit (run again after a conflict)."""

    appender: Appender
    outline: ResolvedOutline
    low: Any
    high: Any

    def __call__(self, session: icechunk.Session) -> Staged[_Written] | AlreadyCommitted:
        dim, where = self.outline.append_dim, self.appender.store.where
        cube = read_outline(session.store, dim, where=where)
        if cube is None:
            raise CubeNotFoundError(f"{where} holds no cube yet: nothing to delete")
        old = _labels_of(session, dim, where)
        plan = _delete_plan(old, self.low, self.high, dim, where)
        if plan is None:
            return AlreadyCommitted(session.snapshot_id)
        _check_neighbours(plan, dim, self.outline, "the delete")
        ledger = self.appender.current_ledger(session, cube.size)
        stats = apply_plan(session, _base_store(self.appender, session), cube, plan, {})
        if self.outline.permit_eval and has_expressions(self.outline.attrs):
            write_evaluated_attrs(session, self.outline.attrs, where)
        moved_entries(ledger, plan)
        ledger.write(session.store, plan.size)
        _check_lengths(session, dim, plan.size, where)
        return _staged_delete(plan, stats, dim)


# -- cubes of groups: every level of a pyramid, every node of a tree along the dimension --------


def _groups_of(appender: Appender, session: icechunk.Session, dim: str) -> GroupsOutline:
    where = appender.store.where
    cube = read_groups_outline(session.store, dim, where=where)
    if cube is None:
        raise CubeNotFoundError(f"{where} holds no cube yet: append its first slice first")
    return cube


def _label_group(cube: GroupsOutline, dim: str, where: str) -> str:
    """The first group along the dimension that holds its label coordinate (the labels are
    the same in every group that has them: appends and writes check it)."""
    for path in cube.appended:
        if dim in cube.groups[path].variables:
            return path
    raise CubeNotFoundError(
        f"{where} has no {dim!r} label coordinate in any group: writes by label and deletes "
        "need one"
    )


def _apply_to_groups(
    session: icechunk.Session,
    appender: Appender,
    cube: GroupsOutline,
    plan: RowPlan,
    values: Mapping[str, Mapping[str, np.ndarray]],
) -> WriteStats:
    """The same row plan written into every group along the append dimension (one session)."""
    base = _base_store(appender, session)
    stats = WriteStats()
    for path in cube.appended:
        apply_plan(session, base, cube.groups[path], plan, values.get(path, {}), path, stats)
    return stats


def _check_unchanged(
    session: icechunk.Session,
    cube: GroupsOutline,
    groups: Mapping[str, xr.Dataset],
    slice_name: str,
    where: str,
) -> None:
    """The groups without the append dimension are written once, with the cube: a write by
    label must bring them as the cube has them (values too; appends check their layout)."""
    from versioncube.store.dataset import open_store

    dim = cube.groups[cube.appended[0]].append_dim if cube.appended else ""
    for path, outline in cube.groups.items():
        if path in cube.appended or not outline.variables:
            continue
        stored = open_store(
            session.store, path or None, where=where, chunks=None, create_default_indexes=False
        )
        given = groups[path]
        for name in sorted(outline.variables):
            if not stored.variables[name].equals(given.variables[name]):  # type: ignore[no-untyped-call]
                raise SliceValidationError(
                    slice_name,
                    f"{cube.label(path)}: {name!r} differs from the cube's; a group without "
                    f"{dim!r} is written once, with the cube, and a write by label cannot change "
                    "it (bring it as the cube has it)",
                )


def _grouped_record(record: CommitRecord, cube: GroupsOutline) -> CommitRecord:
    return dataclasses.replace(record, groups=tuple(tree_path(path) for path in cube.appended))


@dataclasses.dataclass(frozen=True)
class GroupedWriteChange:
    """Write one slice by label into every group of a cube of groups, in one session: the
    levels of a pyramid (computed from the slice as an append computes them), or the nodes of
    a tree slice along the append dimension (the others must equal the cube's)."""

    appender: Appender
    names: SliceNames
    source: PreparedSlice
    outline: ResolvedOutline
    mode: str

    def __call__(self, session: icechunk.Session) -> Staged[_Written] | AlreadyCommitted:
        ref = self.names.identified
        outline, where = self.outline, self.appender.store.where
        dim = outline.append_dim
        cube = _groups_of(self.appender, session, dim)
        ledger = _ledger_unless_held(self.appender, session, self.names, cube.size)
        if isinstance(ledger, AlreadyCommitted):
            return ledger
        grouped = grouped_slice(tree_or_dataset(self.source), outline, cube, ref.name)
        checked = plan_grouped(cube, grouped, ref.name, outline, follows=False)
        _check_unchanged(session, cube, grouped.groups, ref.name, where)
        label_path = _label_group(cube, dim, where)
        to_label = checked.appended.get(label_path)
        if to_label is None or dim not in to_label.dataset.variables:
            raise SliceValidationError(
                ref.name, f"{cube.label(label_path)}: has no {dim!r} labels to write by"
            )
        old = _labels_of(session, dim, where, label_path)
        increasing = outline.step.direction > 0
        new = np.asarray(to_label.dataset.variables[dim].values)
        plan = plan_write(self.mode, old, new, increasing, ref.name, dim)
        _check_neighbours(plan, dim, outline, ref.name)
        values = {
            path: {
                str(name): stored_values(str(name), variable, cube.groups[path])
                for name, variable in appended.dataset.variables.items()
            }
            for path, appended in checked.appended.items()
        }
        stats = _apply_to_groups(session, self.appender, cube, plan, values)
        for path, attrs in group_attrs(grouped, cube, outline).items():
            _set_attrs(session, attrs, path)
        if outline.permit_eval and has_expressions(outline.attrs):
            for path in configured_groups(grouped):
                write_evaluated_attrs(session, outline.attrs, where, path or None)
        _check_lengths(session, dim, plan.size, where, cube.appended)
        return _staged_write(self.mode, ref, dim, plan, stats, ledger, session, cube)


@dataclasses.dataclass(frozen=True)
class GroupedDeleteChange:
    """Remove every label within [low, high] from every group along the append dimension of a
    cube of groups, in one commit."""

    appender: Appender
    outline: ResolvedOutline
    low: Any
    high: Any

    def __call__(self, session: icechunk.Session) -> Staged[_Written] | AlreadyCommitted:
        dim, where = self.outline.append_dim, self.appender.store.where
        cube = _groups_of(self.appender, session, dim)
        old = _labels_of(session, dim, where, _label_group(cube, dim, where))
        plan = _delete_plan(old, self.low, self.high, dim, where)
        if plan is None:
            return AlreadyCommitted(session.snapshot_id)
        _check_neighbours(plan, dim, self.outline, "the delete")
        ledger = self.appender.current_ledger(session, cube.size)
        stats = _apply_to_groups(session, self.appender, cube, plan, {})
        if self.outline.permit_eval and has_expressions(self.outline.attrs):
            paths = [path for path in cube.groups if path] if cube.kind == "levels" else [""]
            for path in paths:
                write_evaluated_attrs(session, self.outline.attrs, where, path or None)
        moved_entries(ledger, plan)
        ledger.write(session.store, plan.size)
        _check_lengths(session, dim, plan.size, where, cube.appended)
        return _staged_delete(plan, stats, dim, cube)


def _delete_plan(old: np.ndarray, low: Any, high: Any, dim: str, where: str) -> RowPlan | None:
    """The plan of a delete (None: no label in the range), refused when it removes every
    label."""
    low, high = _as_label(low, old), _as_label(high, old)
    if high < low:
        low, high = high, low
    plan = plan_delete(old, low, high)
    if plan.size == plan.old_size:
        return None
    if plan.size == 0:
        raise LabelRangeError(
            f"deleting {dim} {format_label(low)} .. {format_label(high)} would remove every "
            f"label of {where}: a cube keeps at least one (roll back, or start it afresh "
            "with force_new)"
        )
    return plan


def _staged_delete(
    plan: RowPlan, stats: WriteStats, dim: str, cube: GroupsOutline | None = None
) -> Staged[_Written]:
    # the row where the removed labels were: every row before the first removed one is kept
    position = int(np.nonzero(~np.isin(np.arange(plan.old_size), plan.from_old))[0][0])
    removed = (plan.removed[0], plan.removed[-1])
    record = _record("delete", "", dim, plan, stats, removed, (position, position))
    if cube is not None:
        record = _grouped_record(record, cube)
    payload = _Written(record, stats)
    subject = f"the delete of {format_label(removed[0])} .. {format_label(removed[1])}"
    return Staged(record.message(), {}, payload, subject, trailer=record.trailer())


def _check_neighbours(plan: RowPlan, dim: str, outline: ResolvedOutline, name: str) -> None:
    """With a fixed ``append_step``, the labels next to every new or closed-up row must still
    follow it."""
    if outline.step.size is None or plan.size < 2:
        return
    source = plan.from_old
    changed = (source[1:] < 0) | (source[:-1] < 0) | (source[1:] - source[:-1] != 1)
    pairs = [(plan.labels[i], plan.labels[i + 1]) for i in np.nonzero(changed)[0]]
    check_steps(pairs, dim, outline.step, name)


def _check_lengths(
    session: icechunk.Session, dim: str, size: int, where: str, paths: Sequence[str] = ("",)
) -> None:
    """Every array along the append dimension (in every group of ``paths``) has the cube's new
    length (checked before the commit: a write that leaves them apart is a bug, and nothing is
    committed)."""
    for path in paths:
        group = zarr.open_group(session.store, path=path, mode="r", zarr_format=3)
        for name, array in group.arrays():
            names = array.metadata.dimension_names or ()  # type: ignore[union-attr]
            if dim in names and array.shape[list(names).index(dim)] != size:
                length = array.shape[list(names).index(dim)]
                shown = f"/{path}/{name}" if path else name
                raise VersionCubeError(
                    f"{where}: array {shown!r} would have length {length} along {dim!r}, the "
                    f"cube {size}; nothing was committed (please report this)"
                )


def _base_store(appender: Appender, session: icechunk.Session) -> Any:
    with translated(appender.store.where):
        return appender.store.repository.readonly_session(snapshot_id=session.snapshot_id).store


def _as_label(text: Any, labels: np.ndarray) -> Any:
    """A label given as text (or a value) in the dtype of the cube's labels."""
    value = text
    try:
        if labels.dtype.kind == "M":
            return np.datetime64(value).astype(labels.dtype)
        if labels.size and hasattr(labels[0], "calendar"):
            return like(np.datetime64(value), labels[0])
        return labels.dtype.type(value)
    except (TypeError, ValueError):
        raise LabelRangeError(
            f"{text!r} is not a label of the cube's kind ({labels.dtype}), e.g. "
            f"{format_label(labels[0]) if labels.size else '?'}"
        ) from None


def parse_label_range(text: str | tuple[Any, Any] | list[Any]) -> tuple[Any, Any]:
    """``A..B`` (or one label ``A``, or a pair) as the first and last label of a range."""
    if isinstance(text, tuple | list):
        if len(text) != 2:
            raise LabelRangeError(f"a label range is two labels, first and last; got {text!r}")
        return text[0], text[1]
    first, dots, last = str(text).partition("..")
    first, last = first.strip(), last.strip()
    if not first or (dots and not last):
        raise LabelRangeError(
            f"{text!r} is not a label range: give FIRST..LAST (e.g. 2024-03-01..2024-03-07) "
            "or one label"
        )
    return first, (last if dots else first)


# -- running them --------------------------------------------------------------------------------


def _is_grouped(appender: Appender, data: PreparedSlice | None = None) -> bool:
    """Whether the cube is a cube of groups (a pyramid, a tree), or the slice a tree: then the
    operation goes to every group."""
    if not isinstance(appender, GroupedAppender):
        return False
    if data is not None:
        return appender.is_grouped(data, appender.outline)
    return appender.outline.levels is not None or appender.is_tree_cube()


def write_item(
    appender: Appender,
    item: SliceLike,
    mode: str,
    *,
    engine: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    options: CommitOptions | None = None,
) -> WriteResult:
    """Write one slice by label in ``mode`` (one of UPDATE_MODES) as one commit."""
    if mode not in UPDATE_MODES:
        from versioncube.errors import ConfigError

        raise ConfigError(f"write mode {mode!r} is not one of {', '.join(WRITE_MODES)}")
    started = time.perf_counter()
    store = appender.store
    if not store.exists():
        raise CubeNotFoundError(
            f"{store.where} holds no cube yet: append its first slice (write --mode {mode} "
            "changes an existing cube)"
        )
    slice_options = appender.slice_options.overridden(
        engine=engine, storage_options=storage_options
    )
    if isinstance(appender, GroupedAppender):  # tree cubes read files as trees
        slice_options = dataclasses.replace(slice_options, groups=appender.files_as_trees())
    outline = appender.outline
    ref = slice_ref(item, slice_options, append_dim=outline.append_dim)
    with open_slice(ref, slice_options) as opened:
        stamp = ref.stamp(slice_options.storage_options)
        identified = ref.identified(opened, stamp)
        names = SliceNames(identified, slice_options, opened if ref.identity is None else None)
        data = prepared(opened)
        change: WriteChange | GroupedWriteChange
        if _is_grouped(appender, data):
            source = data.load() if isinstance(data, xr.DataTree) else _loaded(data)
            change = GroupedWriteChange(appender, names, source, outline, mode)
        else:
            flat = _loaded(flat_decoded(data, identified.name))
            change = WriteChange(appender, names, flat, outline, mode)
        committed = commit_change(
            store.repository, store.target, store.branch, change,
            options or appender.commit_options,
        )  # fmt: skip
    appender.forget()
    return _result(mode, identified.name, committed, started)


def delete_labels(
    appender: Appender, labels: Any, options: CommitOptions | None = None
) -> WriteResult:
    """Remove every label within a range (``"A..B"``, one label, or a pair) in one commit."""
    started = time.perf_counter()
    low, high = parse_label_range(labels)
    store = appender.store
    change: DeleteChange | GroupedDeleteChange
    if _is_grouped(appender):
        change = GroupedDeleteChange(appender, appender.outline, low, high)
    else:
        change = DeleteChange(appender, appender.outline, low, high)
    committed = commit_change(
        store.repository, store.target, store.branch, change, options or appender.commit_options
    )
    appender.forget()
    return _result("delete", "", committed, started)


def _loaded(data: DecodedSlice) -> DecodedSlice:
    return DecodedSlice(data.dataset.load(), data.raw)


def _result(
    operation: str, name: str, committed: Committed[_Written], started: float
) -> WriteResult:
    elapsed = time.perf_counter() - started
    if committed.payload is None:
        status: WriteStatus = "skipped" if operation != "delete" else "nothing to delete"
        return WriteResult(operation, name, status, committed.snapshot_id, None, elapsed=elapsed)
    done = committed.payload
    return WriteResult(
        operation,
        name,
        "written",
        committed.snapshot_id,
        done.record,
        done.stats.written,
        done.stats.moved,
        done.stats.bytes,
        elapsed,
    )
