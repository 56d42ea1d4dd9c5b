"""``append --parallel``: many slices written by a dask cluster's workers, committed in order.

The client keeps the run's order and its guarantees; the workers do the heavy part. For each
slice, in order:

1. the client names it and skips it when the cube already holds it (the slice ledger, as a
   serial run does);
2. a worker opens it and decodes it, keeping it in memory, and sends back its outline (its
   coordinates, and its data variables' dims, dtypes and attributes: no values);
3. the client checks that outline against the cube as it will be once the slices before it are
   committed, which gives the rows it will take; a worker then checks the slice with its
   values against the same outline, encodes it as the cube stores it and writes its chunks into
   a fork of a session whose arrays reach those rows (:func:`_write_rows`) and sends the fork
   back;
4. the client commits the slices in order, each through the commit loop as an append
   (:class:`PrewrittenChange`): in a fresh session on the tip it re-checks the slice and the
   ledger, grows the arrays, writes the append coordinate, the ledger entry and the attributes,
   merges the slice's fork, and commits once, with the same record as a serial append.

Steps 2 and 3 run for the next slices (a window of twice the workers' threads) while the
client commits. A slice whose first row does not start a chunk of the cube along the append
dimension (a chunk shared with the slice before it) is written by the client itself after the
slice before it is committed, as in a serial run; so are slices that are not files (datasets,
slice sources), tree or pyramid cubes, and virtual slices. When the tip is not where the run
expected it (another writer appended meanwhile), the slice is appended the serial way.

Failures: a slice that fails on a worker stops the run at that slice, after the slices before
it are committed, with the error a serial run gives; nothing of it is committed. The forks of
slices never committed (a failure, a killed client) leave chunks no snapshot references;
``gc`` removes them.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import icechunk
import numpy as np
import xarray as xr
import zarr
import zarr.api.asynchronous

from versioncube.config.outline import ResolvedOutline
from versioncube.layout.attrs import has_expressions, merged_attrs
from versioncube.layout.decoding import DecodedSlice
from versioncube.layout.outline import CubeOutline, read_outline
from versioncube.slices.identity import SliceLike, slice_ref
from versioncube.slices.opening import open_slice
from versioncube.slices.options import SliceOptions
from versioncube.store.cluster import Cluster
from versioncube.store.commit import (
    AlreadyCommitted,
    CommitOptions,
    Staged,
    commit_change,
)
from versioncube.store.translate import translated
from versioncube.store.upstream import OpenNodes
from versioncube.write.append import (
    Appender,
    AppendPayload,
    AppendResult,
    SliceNames,
    checked_plan,
    ledger_entry,
    prepared,
    record_for_plan,
    staged_append,
    write_evaluated_attrs,
)
from versioncube.write.in_place import PendingWrite, _encoded, append_in_place, unscanned

logger = logging.getLogger(__name__)


class _Moved(Exception):
    """The tip is not where the run expected it: append this slice the serial way."""


#: A data variable without its values: dims, shape, dtype (its str), attrs, encoding.
_VariableSpec = tuple[tuple[str, ...], tuple[int, ...], str, dict[str, Any], dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class SliceOutline:
    """A decoded slice without its data variables' values: what the client checks it by."""

    coords: xr.Dataset  # the coordinates, loaded
    variables: Mapping[str, _VariableSpec]
    raw: frozenset[str]
    attrs: dict[str, Any]

    def placeholder(self) -> DecodedSlice:
        """The slice with zeros for its data variables' values: read-only views of one zero,
        costing no memory (the real values are checked on the worker)."""
        dataset = self.coords.copy(deep=False)
        for name, (dims, shape, dtype, attrs, encoding) in self.variables.items():
            data = np.broadcast_to(np.zeros((), np.dtype(dtype)), shape)
            variable = xr.Variable(dims, data, attrs)
            variable.encoding = encoding
            dataset[name] = variable
        dataset.attrs = self.attrs
        return DecodedSlice(dataset, self.raw)


# -- on the workers -------------------------------------------------------------------------


def _open_decoded(item: SliceLike, options: SliceOptions) -> DecodedSlice | None:
    """Open and load a slice file (None: it holds a tree of groups, the client appends it)."""
    ref = slice_ref(item, options)
    with open_slice(ref, options) as opened:
        if isinstance(opened, xr.DataTree):
            return None
        data = prepared(opened)
        assert isinstance(data, DecodedSlice)
        return DecodedSlice(data.dataset.load(), data.raw)


def _outline_of(decoded: DecodedSlice | None) -> SliceOutline | None:
    if decoded is None:
        return None
    dataset = decoded.dataset
    variables = {
        str(name): (
            tuple(map(str, variable.dims)),
            variable.shape,
            variable.dtype.str,
            dict(variable.attrs),
            dict(variable.encoding),
        )
        for name, variable in dataset.data_vars.items()
    }
    coords = dataset.drop_vars(list(dataset.data_vars))
    return SliceOutline(coords, variables, decoded.raw, dict(dataset.attrs))


def _write_rows(
    decoded: DecodedSlice,
    cube: CubeOutline,
    outline: ResolvedOutline,
    slice_name: str,
    rows: tuple[int, int],
    fork: icechunk.session.ForkSession,
) -> tuple[icechunk.session.ForkSession, int]:
    """Check the slice with its values against ``cube`` and write its data variables' rows
    into ``fork``, encoded as the cube stores them; the fork (its changes) and the number of
    chunks written go back to the client."""
    plan = checked_plan(cube, decoded, slice_name, outline)
    if plan.index_range != rows:
        raise _Moved(f"{slice_name}: rows {plan.index_range}, expected {rows}")
    dim = cube.append_dim
    written = 0
    root = zarr.open_group(fork.store, mode="r+")
    for name, variable in plan.dataset.data_vars.items():
        values = _encoded(str(name), variable.variable, cube)
        array = root[str(name)]
        assert isinstance(array, zarr.Array)
        region = tuple(slice(*rows) if d == dim else slice(None) for d in variable.dims)
        axis = variable.dims.index(dim)
        unscanned(array, values, axis, rows[0])[region] = values
        written += _chunks_in(array, axis, rows)
    return fork, written


def _chunks_in(array: zarr.Array[Any], axis: int, rows: tuple[int, int]) -> int:
    chunks = array.chunks
    along = -(-rows[1] // chunks[axis]) - rows[0] // chunks[axis]
    others = 1
    for index, (size, chunk) in enumerate(zip(array.shape, chunks, strict=True)):
        if index != axis:
            others *= -(-size // chunk)
    return along * others


# -- on the client --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PrewrittenChange:
    """An append whose data variables' chunks a worker wrote into ``fork``: checked like an
    :class:`~versioncube.write.append.AppendChange`, it grows the arrays, writes the append
    coordinate, the ledger and the attributes, and merges the fork."""

    appender: Appender
    names: SliceNames
    dataset: DecodedSlice  # the placeholder: coordinates, and lazy zeros for data variables
    outline: ResolvedOutline
    rows: tuple[int, int]
    fork: icechunk.session.ForkSession

    def __call__(self, session: icechunk.Session) -> Staged[AppendPayload] | AlreadyCommitted:
        dim, outline, ref = self.outline.append_dim, self.outline, self.names.identified
        cube = self.appender.outline_of(session, dim)
        if cube is None:
            raise _Moved("no cube")
        ledger = self.appender.ledger_for(session, self.names, cube.size)
        if isinstance(ledger, AlreadyCommitted):
            return ledger
        plan = checked_plan(cube, self.dataset, ref.name, outline)
        if plan.index_range != self.rows:
            raise _Moved(f"rows {plan.index_range}, expected {self.rows}")
        attrs = merged_attrs(
            outline.attrs_update_mode, cube.attrs, plan.dataset.attrs, outline.attrs
        )
        evaluated = outline.permit_eval and has_expressions(outline.attrs)
        record = record_for_plan(plan, ref.identity, dim, ref.stamp)
        ledger.add(ledger_entry(record, ref, session))
        stop = self.rows[1]
        growing = _Growing(session.store, cube, list(map(str, plan.dataset.data_vars)), stop)
        coords = plan.dataset.drop_vars(list(plan.dataset.data_vars))
        also: list[PendingWrite] = [growing, ledger.writing(session.store, stop)]
        written = append_in_place(session.store, coords, cube, attrs, also=also)
        session.merge(self.fork)  # chunks only: the arrays keep the shapes grown here
        after = None
        if evaluated:
            write_evaluated_attrs(session, outline.attrs, self.appender.store.where)
        else:
            last = plan.labels[1] if plan.labels is not None else None
            arrays = {**written.arrays, **growing.grown()}
            committed = OpenNodes(written.store, written.group, arrays).committed()
            after = cube.extended(stop, last, attrs, committed)
        return staged_append(record, after, ledger, ref.name)


@dataclasses.dataclass
class _Growing:
    """Grows the arrays whose rows a worker wrote to ``rows`` along the append dimension, in
    the same trip to Zarr's event loop as the rest of the append (a PendingWrite)."""

    store: Any
    cube: CubeOutline
    names: list[str]
    rows: int
    _arrays: list[Any] = dataclasses.field(default_factory=list)

    async def open(self) -> None:
        nodes = self.cube.nodes
        opened = nodes is not None and nodes.in_session_of(self.store)
        if opened and all(name in nodes.arrays for name in self.names):  # type: ignore[union-attr]
            self._arrays = [nodes.arrays[name] for name in self.names]  # type: ignore[union-attr]
            return
        group = await zarr.api.asynchronous.open_group(self.store, mode="r+", zarr_format=3)
        self._arrays = [await group.getitem(name) for name in self.names]

    def grown(self) -> dict[str, Any]:
        """The arrays grown, by name (once written: their metadata holds the new shapes)."""
        return dict(zip(self.names, self._arrays, strict=True))

    async def write(self) -> None:
        dim = self.cube.append_dim
        resizes = []
        for name, array in zip(self.names, self._arrays, strict=True):
            shape = list(array.shape)
            shape[self.cube.variables[name].dims.index(dim)] = self.rows
            resizes.append(array.resize(tuple(shape)))
        await asyncio.gather(*resizes)


@dataclasses.dataclass
class _Pending:
    """One slice of the run on its way through the pipeline."""

    item: SliceLike
    names: SliceNames | None = None  # None: skipped or appended serially
    result: AppendResult | None = None  # known already (skipped)
    data: Any = None  # future: the decoded slice, on a worker
    outline: Any = None  # future: its SliceOutline
    placeholder: DecodedSlice | None = None
    rows: tuple[int, int] | None = None
    written: Any = None  # future: (fork, chunks written)
    serial: bool = False  # appended by the client the serial way
    launched: bool = False  # checked against the ledger, and sent to a worker if a file
    failure: BaseException | None = None  # found when it was checked: raised at its turn


class ParallelRun:
    """Appends slices with the workers' help, committing in order (module docstring)."""

    def __init__(
        self,
        appender: Appender,
        cluster: Cluster,
        options: CommitOptions,
        serial: Callable[[SliceLike], AppendResult],
    ):
        self.appender, self.cluster, self.options = appender, cluster, options
        self.serial = serial
        self.window = max(2, 2 * cluster.total_threads())
        self.worker_options = dataclasses.replace(
            appender.slice_options, context=None, groups=False
        )
        self._eligible: bool | None = None
        self._exists = False
        self._expected: CubeOutline | None = None  # the cube once the planned slices are in
        #: a fork whose arrays reach this many rows, which workers write slices into
        self._fork: tuple[int, icechunk.session.ForkSession] | None = None

    def eligible(self) -> bool:
        """Whether slices can go to the workers at all: a flat cube of copied slices (asked
        once the cube exists, then kept for the run)."""
        if self._eligible is None:
            appender = self.appender
            is_tree = getattr(appender, "is_tree_cube", None)
            self._eligible = not (
                appender.virtual
                or appender.slice_options.source is not None
                or appender.outline.levels is not None
                or (is_tree is not None and is_tree())
            )
        return self._eligible

    def run(self, items: Iterable[SliceLike]) -> Iterator[AppendResult]:
        """Each slice's result, in order (an error stops the run at its slice)."""
        pending: collections.deque[_Pending] = collections.deque()
        source = iter(items)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < self.window:
                    item = next(source, _END)
                    if item is _END:
                        exhausted = True
                        break
                    pending.append(_Pending(item))
                if not pending:
                    return
                self._launch(pending)
                self._plan(pending)
                yield self._finish(pending.popleft())
        finally:
            for entry in pending:  # a stopped run: nothing more to do on the workers
                for future in (entry.data, entry.outline, entry.written):
                    if future is not None:
                        future.cancel()

    def _launch(self, pending: collections.deque[_Pending]) -> None:
        """Send the files not sent yet to workers to be opened, in order, once the cube
        exists (the slice that creates it is appended by the client)."""
        for index, entry in enumerate(pending):
            if entry.launched:
                continue
            if not self._cube_exists():
                if index == 0:
                    entry.launched = entry.serial = True
                return
            self._start(entry)

    def _cube_exists(self) -> bool:
        """Whether the cube exists (and is not to be started afresh); once it does, it does
        for the rest of the run."""
        if not self._exists:
            appender = self.appender
            self._exists = appender.store.exists() and not appender.start_afresh
        return self._exists

    def _start(self, entry: _Pending) -> None:
        """Skip a slice the cube holds; send a file to a worker to be opened."""
        entry.launched = True
        appender, item = self.appender, entry.item
        if not self.eligible() or not _is_file(item):
            entry.serial = True
            return
        options = appender.slice_options
        ref = slice_ref(item, options, append_dim=appender.outline.append_dim)
        stamp = ref.stamp(options.storage_options)
        names = SliceNames(ref, options)
        if (done := appender.commit_holding(names, stamp)) is not None:
            entry.result = AppendResult(ref.name, ref.identity or "", "skipped", done, None)
            return
        client = self.cluster.client
        entry.data = client.submit(_open_decoded, item, self.worker_options, pure=False)
        entry.outline = client.submit(_outline_of, entry.data, pure=False)
        entry.names = dataclasses.replace(names, ref=_identified(ref, stamp))

    def _plan(self, pending: collections.deque[_Pending]) -> None:
        """Check the slices whose outlines are in (the first one waited for) and send their
        writes to the workers, in order; planning stops at a slice the client appends itself
        or that failed (the cube after it is not known yet)."""
        for index, entry in enumerate(pending):
            if not entry.launched or entry.failure is not None:
                return
            if entry.result is not None or entry.rows is not None:
                continue
            if entry.serial:
                self._drop()  # the cube after it: read from the tip once it is committed
                return
            if index > 0 and not entry.outline.done():
                return
            try:
                self._plan_one(entry)
            except Exception as error:  # raised at the slice's turn, after the ones before
                entry.failure = error
                return
            if entry.serial:
                self._drop()
                return

    def _plan_one(self, entry: _Pending) -> None:
        assert entry.names is not None
        sliced: SliceOutline | None = entry.outline.result()
        if sliced is None:  # a file with groups
            entry.serial = True
            return
        outline = self.appender.outline
        cube = self._expected_cube()
        placeholder = sliced.placeholder()
        name = entry.names.identified.name
        plan = checked_plan(cube, placeholder, name, outline)
        rows = plan.index_range
        if not _starts_chunks(cube, plan.dataset, rows[0]):
            entry.serial = True
            return
        fork = self._fork_reaching(rows[1])
        cube_for_worker = dataclasses.replace(cube, nodes=None)
        entry.placeholder, entry.rows = placeholder, rows
        entry.written = self.cluster.client.submit(
            _write_rows, entry.data, cube_for_worker, outline, name, rows, fork, pure=False
        )
        last = plan.labels[1] if plan.labels is not None else None
        self._expected = cube.extended(rows[1], last, cube.attrs)

    def _expected_cube(self) -> CubeOutline:
        if self._expected is None:
            store = self.appender.store
            with translated(store.where):
                session = store.repository.readonly_session(branch=store.branch)
            cube = read_outline(session.store, self.appender.outline.append_dim, where=store.where)
            if cube is None:
                raise _Moved("no cube")
            self._expected = cube
        return self._expected

    def _fork_reaching(self, stop: int) -> icechunk.session.ForkSession:
        """A fork of a session (never committed) whose arrays reach row ``stop``."""
        if self._fork is not None and self._fork[0] >= stop:
            return self._fork[1]
        store = self.appender.store
        reach = 2 * stop + 1024
        dim = self.appender.outline.append_dim
        with translated(store.where):
            staging = store.repository.writable_session(store.branch)
            root = zarr.open_group(staging.store, mode="r+")
            for _, array in root.arrays():
                dims = array.metadata.dimension_names or ()  # type: ignore[union-attr]
                if dim in dims and array.shape[dims.index(dim)] < reach:
                    shape = list(array.shape)
                    shape[dims.index(dim)] = reach
                    array.resize(tuple(shape))
            fork = staging.fork()
        self._fork = (reach, fork)
        return fork

    def _finish(self, entry: _Pending) -> AppendResult:
        """Commit a slice (or append it the serial way), in its turn."""
        if entry.result is not None:
            return entry.result
        if entry.failure is not None and not isinstance(entry.failure, _Moved):
            self._drop()
            raise entry.failure
        if entry.serial or entry.written is None or isinstance(entry.failure, _Moved):
            logger.debug("%s: appended by the client", entry.item)
            self._drop()
            return self.serial(entry.item)
        assert entry.names is not None and entry.rows is not None
        assert entry.placeholder is not None
        try:
            fork, chunks = entry.written.result()
        except _Moved:
            self._drop()
            return self.serial(entry.item)
        except BaseException:
            self._drop()
            raise
        change = PrewrittenChange(
            self.appender,
            entry.names,
            entry.placeholder,
            self.appender.outline,
            entry.rows,
            fork,
        )
        store = self.appender.store
        try:
            committed = commit_change(
                store.repository, store.target, store.branch, change, self.options
            )
        except _Moved:
            self._drop()
            return self.serial(entry.item)
        entry.data = entry.outline = entry.written = None  # let the worker forget it
        logger.debug("%s: %d chunks written by a worker", entry.names.identified.name, chunks)
        return self.appender.note_commit(
            entry.names.identified, committed, False, self.appender.outline
        )

    def _drop(self) -> None:
        """Forget the expected cube and fork: planned again from the tip."""
        self._expected = None
        self._fork = None


_END: Any = object()


def _is_file(item: SliceLike) -> bool:
    return isinstance(item, str | os.PathLike)


def _identified(ref: Any, stamp: str | None) -> Any:
    """The slice named by its file, with its stamp (what the ledger records)."""
    from versioncube.slices.identity import IdentifiedSlice

    assert ref.identity is not None
    return IdentifiedSlice(ref.item, ref.identity, ref.name, stamp)


def _starts_chunks(cube: CubeOutline, dataset: xr.Dataset, start: int) -> bool:
    """Whether row ``start`` begins a chunk (a shard, when sharded) of every data variable
    along the append dimension: then no chunk the slice writes holds rows of another."""
    dim = cube.append_dim
    for name, variable in dataset.data_vars.items():
        encoding: Mapping[str, Any] = cube.variables[str(name)].encoding
        chunks = encoding.get("shards") or encoding.get("chunks")
        if not chunks:
            return False
        if start % int(chunks[variable.dims.index(dim)]):
            return False
    return True
