"""The append pipeline: one slice, one commit.

:meth:`Appender.append` is what every append follows, from the API and the CLI alike:

1. name the slice (its identity) and skip it when the cube at the branch tip already holds it
   (its slice ledger, :mod:`versioncube.versions.ledger`, says so in one read; a file whose
   content stamp changed since is refused);
2. open the slice (from its file, URI, dataset or configured slice source);
3. hand an :class:`AppendChange` to the commit loop, which runs it in a fresh writable session
   on the branch tip: read the cube's outline, tailor the slice to the target outline
   (variables, dims, configured variables it lacks), check it against the cube, write it along
   the append dimension (a first slice with the configured encodings), and set the global
   attributes (``attrs_update_mode``, ``attrs``, evaluated ``{{ }}`` values), and record the
   slice in the ledger, which is part of the same commit;
4. the commit loop commits once, with the commit record as the message's trailer, and hands
   back the change's payload: the record, the cube's outline and its ledger after the commit.

Any error before step 4 leaves the branch tip exactly where it was. The target outline is
stored in the repository's metadata when the cube is created (see
:mod:`versioncube.config.outline`); ``force_new`` starts the cube afresh with the first slice of
a run, as a new commit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import icechunk
import numpy as np
import xarray as xr

from versioncube.config.model import Config
from versioncube.config.outline import ResolvedOutline, TargetOutline
from versioncube.display import html, palette
from versioncube.display.format import describe
from versioncube.display.json import label_to_json
from versioncube.display.results import Result
from versioncube.errors import SliceChangedError, SliceValidationError, VersionCubeError
from versioncube.layout.attrs import evaluate_attrs, has_expressions, merged_attrs
from versioncube.layout.decoding import DecodedSlice, decoded_slice
from versioncube.layout.encoding import creation_encoding
from versioncube.layout.groups import GroupsOutline
from versioncube.layout.outline import CubeOutline, read_outline
from versioncube.layout.tailoring import tailor_slice
from versioncube.layout.validation import AppendPlan, plan_append, plan_first_slice
from versioncube.slices.identity import (
    IdentifiedSlice,
    SliceLike,
    SliceRef,
    earlier_identities,
    slice_ref,
)
from versioncube.slices.opening import SliceData, flat_dataset, open_slice
from versioncube.slices.options import SliceOptions
from versioncube.slices.read_ahead import ReadAhead
from versioncube.store.cluster import Cluster, ClusterSettings, check_reachable, connected
from versioncube.store.commit import (
    AlreadyCommitted,
    Change,
    CommitOptions,
    Committed,
    RetryPolicy,
    Staged,
    commit_change,
)
from versioncube.store.dataset import open_store
from versioncube.store.repository import CubeStore
from versioncube.store.translate import translated
from versioncube.versions.ledger import (
    AppendingCommits,
    Ledger,
    LedgerEntry,
    entries_from_history,
)
from versioncube.versions.record import CommitRecord
from versioncube.write.distributed import ChunkProgress, LazyWriter
from versioncube.write.in_place import append_in_place, can_append_in_place

AppendStatus = Literal["appended", "skipped", "would append", "would fail"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class AppendResult(Result):
    """What happened to one slice."""

    slice_name: str
    identity: str
    status: AppendStatus
    #: the new commit; for a skipped slice the commit that appended it, or, when ``gc`` expired
    #: that commit, the version it was found in
    snapshot_id: str | None
    record: CommitRecord | None  # the commit record (None for a skipped or failing slice)
    error: str | None = None  # why a dry run found that the slice would fail

    def describe(self) -> str:
        """One line for people, e.g. ``appended 2024-03-01.nc: time 2024-03-01 (snapshot X)``."""
        if self.status == "would fail":
            return f"would fail {self.slice_name}: {self.error}"
        if self.record is None:  # skipped
            return f"skipped {self.slice_name}: already in the cube (snapshot {self.snapshot_id})"
        text = f"{self.status} {self.slice_name}: {self.record.extent()}"
        if self.record.starts_cube:
            text += ", creating the cube"
        return text + (f" (snapshot {self.snapshot_id})" if self.snapshot_id else "")

    def html_title(self) -> str:
        return "Append"

    def _repr_html_(self) -> str:
        details: list[tuple[str, object]] = [("slice", self.identity)]
        if self.record is not None:
            details.append(("labels", self.record.extent()))
            if self.record.index_range is not None:
                start, stop = self.record.index_range
                details.append(("rows", f"[{start}:{stop})"))
            if self.record.starts_cube:
                details.append(("cube", "created by this slice"))
        if self.snapshot_id:
            held = "holding it" if self.status == "skipped" else "written"
            details.append((f"snapshot ({held})", self.snapshot_id))
        if self.error:
            details.append(("why", self.error))
        accent = {"would fail": palette.DAMAGE, "skipped": palette.OTHER_OPERATION}
        return html.card(
            self.html_kind(),
            f"{self.status} {self.slice_name}",
            "",
            html.facts(details),
            accent=accent.get(self.status, palette.ACCENT),
        )


@dataclasses.dataclass(frozen=True)
class AppendPayload:
    """What an append hands back through the commit loop."""

    record: CommitRecord
    #: the cube's outline after the commit, when known without reading (every group's outline
    #: for a cube of groups)
    outline: CubeOutline | GroupsOutline | None
    ledger: Ledger  # the cube's slice ledger after the commit


def record_for_plan(
    plan: AppendPlan, identity: str, append_dim: str, stamp: str | None = None
) -> CommitRecord:
    """The commit record of an append (or of the commit that creates the cube)."""
    labels = None
    if plan.labels is not None:
        labels = (label_to_json(plan.labels[0]), label_to_json(plan.labels[1]))
    return CommitRecord(
        operation="create" if plan.creates_cube else "append",
        slice=identity,
        slice_name=plan.slice_name,
        append_dim=append_dim,
        index_range=plan.index_range,
        labels=labels,
        stamp=stamp,
    )


class Appender:
    """Appends slices to one cube (a :class:`CubeStore`) with one run's settings.

    It keeps, for the snapshot they were taken at, the cube's slice ledger (the buckets read so
    far) and the cube's outline, so that an append need not read them again when nobody else
    wrote since its own last commit.
    """

    def __init__(self, store: CubeStore, config: Config):
        self.store = store
        self.configured = TargetOutline.from_config(config)
        self.slice_options = SliceOptions.from_config(config)
        self.commit_options = CommitOptions(
            retry=RetryPolicy(on_conflict=config.on_conflict, max_retries=config.max_retries)
        )
        self.start_afresh = config.force_new  # the next append starts the cube anew
        self.virtual = config.virtual  # files become references (write/virtual.py)
        self.virtual_group = config.virtual_group
        self.virtual_containers = tuple(config.virtual_containers)
        #: the dask cluster of the run (store/cluster.py) and how dask-backed slices are
        #: written on it (write/distributed.py)
        self.cluster_settings = ClusterSettings.of(
            config.dask_scheduler, config.dask_workers, config.memory_limit
        )
        self.parallel = config.parallel
        self.lazy = LazyWriter()
        #: told what comes next by a serial run of a list of slices (versioncube.write.run)
        self.read_ahead = ReadAhead()
        self._ledger_at: tuple[str, Ledger] | None = None
        self._commits = AppendingCommits()
        self._outline_at: tuple[str, CubeOutline | GroupsOutline] | None = None
        self._dry_run_outline: CubeOutline | None = None
        self._reconciled: tuple[Mapping[str, Any], ResolvedOutline] | None = None

    @contextlib.contextmanager
    def on_cluster(
        self,
        announce: Callable[[str], None] | None = None,
        on_chunks: ChunkProgress | None = None,
    ) -> Iterator[Cluster | None]:
        """Run the appends inside on the run's dask cluster, if there is one (see
        :mod:`versioncube.store.cluster`); re-entered, the cluster already connected.

        A target the workers cannot reach is refused here, before anything is written: an
        in-memory cube, or a local folder some worker does not see.
        """
        if self.lazy.cluster is not None:
            yield self.lazy.cluster
            return
        with connected(self.cluster_settings, announce) as cluster:
            if cluster is not None:
                check_reachable(cluster, self.store.target)
            self.lazy = LazyWriter(cluster, on_chunks, announce)
            try:
                yield cluster
            finally:
                self.lazy = LazyWriter()

    @property
    def outline(self) -> ResolvedOutline:
        """The target outline: the one stored with the cube, else the configured one.

        A configured setting that contradicts the stored outline raises ConfigError.
        """
        outline = self.configured
        if not self.start_afresh and self.store.exists():
            stored = self.store.settings()
            if self._reconciled is not None and self._reconciled[0] is stored:
                return self._reconciled[1]  # asked on every append: reconcile once per settings
            resolved = outline.reconciled(stored, self.store.where).resolved()
            self._reconciled = (stored, resolved)
            return resolved
        return outline.resolved()

    def appended_slices(self) -> Mapping[str, str]:
        """Slice identity -> the commit that appended it, for every slice the cube holds at the
        branch tip (reads the whole ledger; see :attr:`AppendResult.snapshot_id`)."""
        if not self.store.exists():
            return {}
        tip = self.store.tip()
        ledger = self.ledger_at(tip)
        return {entry.identity: self.holding_commit(tip, entry) for entry in ledger.entries()}

    def forget(self) -> None:
        """Drop what was simulated by dry runs, and the commits found for skipped slices: a
        ref change (rollback, gc) makes them stale."""
        self._dry_run_outline = None
        self._commits = AppendingCommits()

    def append(
        self,
        item: SliceLike,
        *,
        dry_run: bool = False,
        engine: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        options: CommitOptions | None = None,
    ) -> AppendResult:
        """Append one slice as one commit (see the module docstring for the steps); virtual
        slices go through :func:`versioncube.write.virtual.append_item`."""
        slice_options = self.slice_options.overridden(
            engine=engine, storage_options=storage_options
        )
        # a configuration that contradicts the cube is refused even when every slice is skipped
        append_dim = self.outline.append_dim
        ref = slice_ref(item, slice_options, append_dim=append_dim)
        stamp = ref.stamp(slice_options.storage_options)
        if (done := self.commit_holding(SliceNames(ref, slice_options), stamp)) is not None:
            return AppendResult(ref.name, ref.identity or "", "skipped", done, None)
        ahead = self.read_ahead  # in a run, the next file is read while this one goes in
        ready = ahead.take(ref, slice_options, stamp)
        with (
            open_slice(ref, slice_options, ready=ready) as opened,
            ahead.alongside(opened, ref, slice_options, append_dim),
        ):
            if stamp is None:  # a file that appeared while slice_polling waited for it
                stamp = ref.stamp(slice_options.storage_options)
            identified = ref.identified(opened, stamp)
            if ref.identity is None:  # named by its content: look it up by that name
                names = SliceNames(identified, slice_options, opened)
                if (done := self.commit_holding(names, stamp)) is not None:
                    return AppendResult(identified.name, identified.identity, "skipped", done, None)
            data = prepared(opened)
            if dry_run:
                return self._dry_run(identified, data)
            names = SliceNames(identified, slice_options, opened if ref.identity is None else None)
            return self._commit(names, data, options or self.commit_options)

    def _commit(
        self, names: SliceNames, data: PreparedSlice, options: CommitOptions
    ) -> AppendResult:
        ref = names.identified
        afresh, outline = self.start_afresh, self.outline
        settings: dict[str, Any] = {}
        if afresh or not self.store.exists():
            self.rehearse_first_slice(ref, data, outline)  # refuse before creating anything
            settings = self.settings_for(data, outline)
        if self.store.exists():
            repo = self.store.repository
        else:
            repo = self.store.create(settings, outline.append_dim)
        change = self.change_for(names, data, outline, afresh)
        committed = commit_change(repo, self.store.target, self.store.branch, change, options)
        return self.note_commit(ref, committed, afresh, outline, settings)

    def note_commit(
        self,
        ref: IdentifiedSlice,
        committed: Committed[AppendPayload],
        afresh: bool,
        outline: ResolvedOutline,
        settings: Mapping[str, Any] | None = None,
    ) -> AppendResult:
        """Keep the ledger and the outline current after an append's commit (copied or
        virtual), and say what happened; ``settings``: what the repository keeps about a cube
        started afresh (default: its outline's)."""
        if committed.payload is None:  # another writer appended this very slice first
            return AppendResult(ref.name, ref.identity, "skipped", committed.snapshot_id, None)
        payload = committed.payload
        if afresh:
            self.store.save_settings(outline_settings(outline) if settings is None else settings)
            self.start_afresh = False
            self._dry_run_outline = None
        self._ledger_at = (committed.snapshot_id, payload.ledger)
        self._outline_at = None
        if payload.outline is not None:
            self._outline_at = (committed.snapshot_id, payload.outline)
        return AppendResult(
            ref.name, ref.identity, "appended", committed.snapshot_id, payload.record
        )

    # -- hooks: a cube of groups (versioncube.write.grouped) writes other layouts ------------

    def change_for(
        self, names: SliceNames, data: PreparedSlice, outline: ResolvedOutline, afresh: bool
    ) -> Change[AppendPayload]:
        """The change that appends the slice."""
        flat = flat_decoded(data, names.identified.name)
        return AppendChange(self, names, flat, outline, afresh)

    def settings_for(self, data: PreparedSlice, outline: ResolvedOutline) -> dict[str, Any]:
        """What the repository keeps about a cube this slice creates (see outline_settings)."""
        return outline_settings(outline)

    def check_first_slice(
        self, ref: IdentifiedSlice, data: PreparedSlice, outline: ResolvedOutline
    ) -> None:
        """Check that the whole slice can start the cube (before its rehearsal)."""
        first_slice_plan(flat_decoded(data, ref.name), ref.name, outline)

    def rehearse_first_slice(
        self, ref: IdentifiedSlice, data: PreparedSlice, outline: ResolvedOutline
    ) -> None:
        """Write the first step of a cube's first slice into a throwaway in-memory repository.

        What only fails while writing (a codec the cube cannot take, a ``{{ }}`` attribute
        naming a missing field) then fails before the real repository is created, so a failed
        first append leaves the target as it was. Errors other than versioncube's own become
        the slice's SliceValidationError.
        """
        self.check_first_slice(ref, data, outline)
        step = first_step(data, outline.append_dim)
        probe = icechunk.Repository.create(icechunk.in_memory_storage())
        try:
            names = SliceNames(ref, self.slice_options)
            change = self.change_for(names, step, outline, afresh=True)
            change(probe.writable_session("main"))
        except VersionCubeError:
            raise
        except Exception as error:  # whatever the writers raise: this slice cannot start a cube
            raise SliceValidationError(
                ref.name, f"cannot be written as the cube's first slice: {describe(error)}"
            ) from error

    def commit_holding(self, names: SliceNames, stamp: str | None) -> str | None:
        """The commit that already holds this slice at the branch tip, or None (always None
        when starting anew).

        A file whose content stamp differs from the one recorded then raises SliceChangedError.
        """
        identity = names.ref.identity
        if identity is None or self.start_afresh or not self.store.exists():
            return None
        tip = self.store.tip()
        own = self._ledger_at is not None and self._ledger_at[0] == tip  # our last commit
        ledger = self.ledger_at(tip, prefetch=[identity])
        if own and not ledger.holds_bucket_of(identity):
            # a run of appends: read the whole ledger once, our commits keep it current
            assert self._ledger_at is not None
            self._ledger_at[1].load()
        entry = ledger.find(names.for_ledger(ledger))
        if entry is None:
            return None
        return unchanged(entry, self.holding_commit(tip, entry), names.ref.name, stamp)

    def ledger_at(
        self, snapshot_id: str, store: Any = None, prefetch: Sequence[str] = ()
    ) -> Ledger:
        """The slice ledger at a snapshot (``store``: a session's store on it, else one is
        opened), with the buckets of the ``prefetch`` identities read in the same trip; built
        from the commit records for cubes written before the ledger."""
        if self._ledger_at is not None and self._ledger_at[0] == snapshot_id:
            return self._ledger_at[1].fork(store or (lambda: self._readonly_store(snapshot_id)))
        store = store or self._readonly_store(snapshot_id)
        ledger = Ledger.read(store, prefetch)
        if ledger is None:  # written before the ledger existed: read the history once
            ledger = Ledger.empty(store)
            entries, _ = entries_from_history(self.store.repository, snapshot_id)
            for entry in reversed(entries):
                ledger.add(entry)
        self._ledger_at = (snapshot_id, ledger)
        return ledger.fork(store)

    def current_ledger(self, session: icechunk.Session, rows: int) -> Ledger:
        """The ledger in a writable session, caught up with commits an older versioncube (or
        another tool) made on top of it: those change the cube's length (``rows``) without
        writing the ledger."""
        ledger = self.ledger_at(session.snapshot_id, session.store)
        if not ledger.exists or ledger.rows == rows:
            return ledger
        entries, from_start = entries_from_history(self.store.repository, session.snapshot_id)
        if from_start:  # an older versioncube started the cube afresh: the ledger is not its own
            ledger = Ledger.empty(session.store)
        for entry in reversed(entries):
            ledger.add(entry)
        return ledger

    def ledger_for(
        self, session: icechunk.Session, names: SliceNames, rows: int | None
    ) -> Ledger | AlreadyCommitted:
        """The ledger a change adds its slice to, in its writable session: a new one when the
        change creates the cube (``rows`` None), else the cube's, caught up; or
        AlreadyCommitted when it holds the slice already (another writer was first). A file
        whose content changed since it was appended raises SliceChangedError."""
        if rows is None:
            return Ledger.empty(session.store)
        ledger = self.current_ledger(session, rows)
        held = ledger.find(names.for_ledger(ledger))
        if held is None:
            return ledger
        ref = names.identified
        done = unchanged(held, self.holding_commit(session.snapshot_id, held), ref.name, ref.stamp)
        return AlreadyCommitted(done)

    def holding_commit(self, tip: str, entry: LedgerEntry) -> str:
        """The commit that appended a slice the cube at ``tip`` holds, or ``tip`` itself when
        gc expired that commit."""
        return self._commits.find(self.store.repository, tip, entry) or tip

    def _readonly_store(self, snapshot_id: str) -> Any:
        with translated(self.store.where):
            return self.store.repository.readonly_session(snapshot_id=snapshot_id).store

    def kept_outline(self, session: icechunk.Session) -> CubeOutline | GroupsOutline | None:
        """The outline kept from our last commit, if that commit is the session's base (a
        flat cube's with the nodes that commit stores opened in the session)."""
        if self._outline_at is None or self._outline_at[0] != session.snapshot_id:
            return None
        kept = self._outline_at[1]
        return kept.opened_in(session.store) if isinstance(kept, CubeOutline) else kept

    def outline_of(self, session: icechunk.Session, append_dim: str) -> CubeOutline | None:
        """The cube's outline in ``session``: kept from our last commit when that is its base."""
        kept = self.kept_outline(session)
        if isinstance(kept, CubeOutline):
            return kept
        return read_outline(session.store, append_dim, where=self.store.where)

    def _dry_run(self, ref: IdentifiedSlice, data: PreparedSlice) -> AppendResult:
        dataset = flat_decoded(data, ref.name)
        outline = self.outline
        dim = outline.append_dim
        if self._dry_run_outline is None and self.store.exists() and not self.start_afresh:
            with translated(self.store.where):
                session = self.store.repository.readonly_session(branch=self.store.branch)
            self._dry_run_outline = read_outline(session.store, dim, where=self.store.where)
        if self._dry_run_outline is None:
            self.rehearse_first_slice(ref, dataset, outline)
            plan = first_slice_plan(dataset, ref.name, outline)
            # as the real run stores it
            created = with_creation_encoding(plan.dataset, outline, dataset.raw, ref.name)
            self._dry_run_outline = CubeOutline.of_dataset(created, dim)
        else:
            plan = checked_plan(self._dry_run_outline, dataset, ref.name, outline)
            last = plan.labels[1] if plan.labels is not None else None
            self._dry_run_outline = self._dry_run_outline.extended(plan.index_range[1], last)
        record = record_for_plan(plan, ref.identity, dim, ref.stamp)
        return AppendResult(ref.name, ref.identity, "would append", None, record)


@dataclasses.dataclass
class SliceNames:
    """The identities a slice may be recorded under in a ledger: its own, and those of earlier
    content hashes (computed only for a ledger that holds such names, see
    :func:`~versioncube.slices.identity.earlier_identities`)."""

    ref: SliceRef | IdentifiedSlice
    options: SliceOptions
    #: the opened slice, when its identity came from it
    dataset: xr.Dataset | xr.DataTree | None = None
    _earlier: list[str] | None = None

    @property
    def identified(self) -> IdentifiedSlice:
        assert isinstance(self.ref, IdentifiedSlice)
        return self.ref

    def for_ledger(self, ledger: Ledger) -> list[str]:
        assert self.ref.identity is not None
        if not ledger.legacy_hashes:
            return [self.ref.identity]
        if self._earlier is None:
            self._earlier = earlier_identities(self.ref, self.options, self.dataset)
        return [self.ref.identity, *self._earlier]


#: A slice as the append pipeline carries it: a dataset decoded (with what came encoded), or a
#: tree of groups (for a cube of groups).
PreparedSlice = DecodedSlice | xr.DataTree


def prepared(opened: SliceData) -> PreparedSlice:
    """An opened slice ready for the pipeline: a dataset's raw (CF-encoded) variables decoded."""
    return opened if isinstance(opened, xr.DataTree) else decoded_slice(opened)


def flat_decoded(data: PreparedSlice, slice_name: str) -> DecodedSlice:
    """The slice as one decoded dataset; a tree of groups is refused (only a cube of groups
    takes it)."""
    if isinstance(data, xr.DataTree):
        flat_dataset(data, slice_name)  # raises: says what to do
        raise AssertionError("unreachable")
    return data


def tree_or_dataset(data: PreparedSlice) -> xr.Dataset | xr.DataTree:
    """The slice's (decoded) dataset, or its tree: what the groups of a cube are made from."""
    return data.dataset if isinstance(data, DecodedSlice) else data


def first_step(data: PreparedSlice, append_dim: str) -> PreparedSlice:
    """The first step of a slice (of each group along ``append_dim`` of a tree), with zeros
    for lazy variables: a rehearsal never computes a lazy slice."""
    if isinstance(data, xr.DataTree):
        return xr.DataTree.from_dict(
            {
                node.path: _first_step(node.to_dataset(inherit=False), append_dim)
                for node in data.subtree
            }
        )
    return DecodedSlice(_first_step(data.dataset, append_dim), data.raw)


def _first_step(dataset: xr.Dataset, append_dim: str) -> xr.Dataset:
    if append_dim not in dataset.dims:
        return dataset
    step = dataset.isel({append_dim: slice(0, 1)}).copy(deep=False)
    for name, variable in step.data_vars.items():
        if hasattr(variable.data, "dask"):
            zeros = xr.Variable(variable.dims, np.zeros(variable.shape, variable.dtype))
            zeros.attrs, zeros.encoding = variable.attrs, variable.encoding
            step[name] = zeros
    return step


@dataclasses.dataclass(frozen=True)
class AppendChange:
    """The change an append hands to the commit loop: validate and write one slice into a fresh
    session on the branch tip (run again on the new tip after a conflict)."""

    appender: Appender
    names: SliceNames
    dataset: DecodedSlice
    outline: ResolvedOutline
    afresh: bool

    @property
    def ref(self) -> IdentifiedSlice:
        return self.names.identified

    def __call__(self, session: icechunk.Session) -> Staged[AppendPayload] | AlreadyCommitted:
        dim, outline = self.outline.append_dim, self.outline
        cube = None if self.afresh else self.appender.outline_of(session, dim)
        ledger = self.appender.ledger_for(session, self.names, cube.size if cube else None)
        if isinstance(ledger, AlreadyCommitted):
            return ledger
        plan = checked_plan(cube, self.dataset, self.ref.name, outline)
        attrs = merged_attrs(
            outline.attrs_update_mode,
            cube.attrs if cube is not None else None,
            plan.dataset.attrs,
            outline.attrs,
        )
        evaluated = outline.permit_eval and has_expressions(outline.attrs)
        record = record_for_plan(plan, self.ref.identity, dim, self.ref.stamp)
        ledger.add(ledger_entry(record, self.ref, session))
        rows = plan.index_range[1]
        after: CubeOutline | None = None
        if cube is None:  # the plan creates the cube
            to_write = with_creation_encoding(
                plan.dataset, outline, self.dataset.raw, self.ref.name
            )
            to_write.attrs = attrs
            mode: Literal["w", "w-"] = "w" if self.afresh else "w-"
            self.appender.lazy.write(to_write, session, self.ref.name, append_dim=dim, mode=mode)
            ledger.write(session.store, rows)
        elif can_append_in_place(plan.dataset):
            ledger_write = ledger.writing(session.store, rows)
            written = append_in_place(session.store, plan.dataset, cube, attrs, also=[ledger_write])
            if not evaluated:
                last = plan.labels[1] if plan.labels is not None else None
                after = cube.extended(rows, last, attrs, written.committed())
        else:
            # dask-backed: written chunk by chunk, rechunked to the cube's chunks as zappend does
            to_write = plan.dataset.copy(deep=False)
            to_write.attrs = attrs
            self.appender.lazy.write(
                to_write, session, self.ref.name, append_dim=dim, offset=cube.size
            )
            ledger.write(session.store, rows)
        if evaluated:
            write_evaluated_attrs(session, outline.attrs, self.appender.store.where)
        return staged_append(record, after, ledger, self.ref.name)


def ledger_entry(
    record: CommitRecord, ref: IdentifiedSlice, session: icechunk.Session
) -> LedgerEntry:
    """The ledger's entry of the slice an append's record describes, committed on the
    session's snapshot."""
    assert record.index_range is not None
    return LedgerEntry(
        ref.identity, record.index_range, record.labels, base=session.snapshot_id, stamp=ref.stamp
    )


def staged_append(
    record: CommitRecord,
    outline: CubeOutline | GroupsOutline | None,
    ledger: Ledger,
    subject: str,
) -> Staged[AppendPayload]:
    """An append ready to commit: the record as the message's trailer, no commit metadata (it
    costs every later commit, see :mod:`versioncube.versions.record`)."""
    payload = AppendPayload(record, outline, ledger)
    return Staged(record.message(), {}, payload, subject, trailer=record.trailer())


def unchanged(held: LedgerEntry, commit: str, name: str, stamp: str | None) -> str:
    """The commit holding a slice, refusing a file whose content changed since it appended it
    (``commit``: that commit, or the version the slice was found in when gc expired it)."""
    if held.stamp is not None and stamp is not None and held.stamp != stamp:
        raise SliceChangedError(
            name,
            f"its content changed since snapshot {commit} appended it (then: "
            f"{held.stamp}; now: {stamp}); the cube holds the old content, which a re-run "
            "of append does not replace: bring the new content in with `versioncube write "
            "--mode replace` (same labels) or `--mode upsert` (labels added too), roll back to "
            "before that snapshot, or give it a path of its own",
            commit,
        )
    return commit


def outline_settings(outline: TargetOutline) -> dict[str, Any]:
    """What the repository's metadata keeps of the cube (schema 1 plus the target outline)."""
    return {"schema": 1, **outline.to_metadata()}


def checked_plan(
    cube: CubeOutline | None, dataset: DecodedSlice, slice_name: str, outline: ResolvedOutline
) -> AppendPlan:
    """Tailor the slice to the target outline and check it against the cube (None: no cube)."""
    dim = outline.append_dim
    tailored = tailor_slice(dataset.dataset, outline, slice_name)
    if cube is None:
        return plan_first_slice(tailored, dim, slice_name, step=outline.step)
    converted = {name for name in cube.variables if outline.converts(name)}
    return plan_append(
        cube, tailored, slice_name, step=outline.step, converted=converted, raw=dataset.raw
    )


def first_slice_plan(
    dataset: DecodedSlice, slice_name: str, outline: ResolvedOutline
) -> AppendPlan:
    """Check that a slice can start the cube, configured encodings included."""
    plan = checked_plan(None, dataset, slice_name, outline)
    with_creation_encoding(plan.dataset, outline, dataset.raw, slice_name)
    return plan


def with_creation_encoding(
    dataset: xr.Dataset,
    outline: ResolvedOutline,
    raw: frozenset[str] = frozenset(),
    slice_name: str = "the first slice",
) -> xr.Dataset:
    """The first slice with the encodings (and configured variable attributes) the cube
    is created with (``raw``: the variables that came CF-encoded, see
    :mod:`versioncube.layout.decoding`)."""
    dataset = dataset.copy(deep=False)
    updates = creation_encoding(
        dataset, outline.append_dim, outline, raw=raw, slice_name=slice_name
    )
    for name, update in updates.items():
        variable = dataset.variables[name]
        variable.encoding = {**variable.encoding, **update}
    for key, variable in dataset.variables.items():
        configured = outline.variable(str(key)).get("attrs")
        if configured:
            variable.attrs = {**variable.attrs, **configured}
    return dataset


def write_evaluated_attrs(
    session: icechunk.Session, attrs: Mapping[str, Any], where: str, group: str | None = None
) -> None:
    """Compute the ``{{ }}`` attributes over the whole cube (or one of its groups) as this
    session holds it."""
    import zarr

    cube = open_store(session.store, group, where=where, chunks={})
    zarr.open_group(session.store, path=group or "", mode="r+").attrs.update(
        evaluate_attrs(attrs, cube)
    )
