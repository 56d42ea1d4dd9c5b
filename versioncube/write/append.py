"""The append pipeline: one slice, one commit.

:meth:`Appender.append` is what every append follows, from the API and the CLI alike:

1. name the slice (its identity) and skip it when the cube at the branch tip already holds it
   (its slice ledger, :mod:`versioncube.versions.ledger`, says so in one read);
2. open the slice (from its file, URI, dataset or configured slice source);
3. hand an :class:`AppendChange` to the commit loop, which runs it in a fresh writable session
   on the branch tip: read the cube's outline, tailor the slice to the target outline
   (variables, dims, configured variables it lacks), check it against the cube, write it along
   the append dimension (a first slice with the configured encodings), and set the global
   attributes (``attrs_update_mode``, ``attrs``, evaluated ``{{ }}`` values), and record the
   slice in the ledger, which is part of the same commit;
4. the commit loop commits once, with the commit record as metadata, and hands back the change's
   payload: the record, the cube's outline and its ledger after the commit.

Any error before step 4 leaves the branch tip exactly where it was. The target outline is
stored in the repository's metadata when the cube is created (see
:mod:`versioncube.config.outline`); ``force_new`` starts the cube afresh with the first slice of
a run, as a new commit.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import icechunk
import xarray as xr
from icechunk.xarray import to_icechunk

from versioncube.config.model import Config
from versioncube.config.outline import DEFAULT_APPEND_DIM, TargetOutline
from versioncube.display.json import label_to_json
from versioncube.display.results import Result
from versioncube.layout.attrs import evaluate_attrs, has_expressions, merged_attrs
from versioncube.layout.encoding import creation_encoding
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
from versioncube.slices.opening import open_slice
from versioncube.slices.options import SliceOptions
from versioncube.store.commit import (
    AlreadyCommitted,
    CommitOptions,
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
from versioncube.write.in_place import append_in_place, can_append_in_place

AppendStatus = Literal["appended", "skipped", "would append"]

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
    record: CommitRecord | None  # the commit record (None for a skipped slice)

    def describe(self) -> str:
        """One line for people, e.g. ``appended 2024-03-01.nc: time 2024-03-01 (snapshot X)``."""
        if self.status == "skipped":
            return f"skipped {self.slice_name}: already in the cube (snapshot {self.snapshot_id})"
        assert self.record is not None
        text = f"{self.status} {self.slice_name}: {self.record.extent()}"
        if self.record.starts_cube:
            text += ", creating the cube"
        return text + (f" (snapshot {self.snapshot_id})" if self.snapshot_id else "")

    def html_title(self) -> str:
        return "Append"


@dataclasses.dataclass(frozen=True)
class AppendPayload:
    """What an append hands back through the commit loop."""

    record: CommitRecord
    outline: CubeOutline | None  # the cube's outline after the commit, when known without reading
    ledger: Ledger  # the cube's slice ledger after the commit


def record_for_plan(plan: AppendPlan, identity: str, append_dim: str) -> CommitRecord:
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
        self._ledger_at: tuple[str, Ledger] | None = None
        self._commits = AppendingCommits()
        self._outline_at: tuple[str, CubeOutline] | None = None
        self._dry_run_outline: CubeOutline | None = None

    @property
    def outline(self) -> TargetOutline:
        """The target outline: the one stored with the cube, else the configured one.

        A configured setting that contradicts the stored outline raises ConfigError.
        """
        outline = self.configured
        if not self.start_afresh and self.store.exists():
            outline = outline.reconciled(self.store.settings(), self.store.where)
        return dataclasses.replace(outline, append_dim=outline.append_dim or DEFAULT_APPEND_DIM)

    def appended_slices(self) -> Mapping[str, str]:
        """Slice identity -> the commit that appended it, for every slice the cube holds at the
        branch tip (reads the whole ledger; see :attr:`AppendResult.snapshot_id`)."""
        if not self.store.exists():
            return {}
        tip = self.store.tip()
        ledger = self.ledger_at(tip)
        return {entry.identity: self.holding_commit(tip, entry) for entry in ledger.entries()}

    def forget(self) -> None:
        """Drop what was simulated by dry runs; a ref change (rollback, gc) makes it stale."""
        self._dry_run_outline = None

    def append(
        self,
        item: SliceLike,
        *,
        dry_run: bool = False,
        engine: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        options: CommitOptions | None = None,
    ) -> AppendResult:
        """Append one slice as one commit (see the module docstring for the steps)."""
        slice_options = self.slice_options.overridden(
            engine=engine, storage_options=storage_options
        )
        ref = slice_ref(item, slice_options)
        if (done := self._commit_holding(SliceNames(ref, slice_options))) is not None:
            return AppendResult(ref.name, ref.identity or "", "skipped", done, None)
        with open_slice(ref, slice_options) as dataset:
            identified = ref.identified(dataset)
            names = SliceNames(identified, slice_options, dataset if ref.identity is None else None)
            if ref.identity is None and (done := self._commit_holding(names)) is not None:
                return AppendResult(identified.name, identified.identity, "skipped", done, None)
            if dry_run:
                return self._dry_run(identified, dataset)
            return self._commit(names, dataset, options or self.commit_options)

    def _commit(
        self, names: SliceNames, dataset: xr.Dataset, options: CommitOptions
    ) -> AppendResult:
        ref = names.identified
        afresh, outline = self.start_afresh, self.outline
        if afresh or not self.store.exists():
            first_slice_plan(dataset, ref.name, outline)  # refuse before creating anything
        if self.store.exists():
            repo = self.store.repository
        else:
            repo = self.store.create(outline_settings(outline), outline.append_dim)
        change = AppendChange(self, names, dataset, outline, afresh)
        committed = commit_change(repo, self.store.target, self.store.branch, change, options)
        if committed.payload is None:  # another writer appended this very slice first
            return AppendResult(ref.name, ref.identity, "skipped", committed.snapshot_id, None)
        payload = committed.payload
        if afresh:
            self.store.save_settings(outline_settings(outline))
            self.start_afresh = False
            self._dry_run_outline = None
        self._ledger_at = (committed.snapshot_id, payload.ledger)
        self._outline_at = None
        if payload.outline is not None:
            self._outline_at = (committed.snapshot_id, payload.outline)
        return AppendResult(
            ref.name, ref.identity, "appended", committed.snapshot_id, payload.record
        )

    def _commit_holding(self, names: SliceNames) -> str | None:
        """The commit that already holds this slice at the branch tip, or None (always None
        when starting anew)."""
        if names.ref.identity is None or self.start_afresh or not self.store.exists():
            return None
        tip = self.store.tip()
        own = self._ledger_at is not None and self._ledger_at[0] == tip  # our last commit
        ledger = self.ledger_at(tip, prefetch=[names.ref.identity])
        if own and not ledger.holds_bucket_of(names.ref.identity):
            # a run of appends: read the whole ledger once, our commits keep it current
            assert self._ledger_at is not None
            self._ledger_at[1].load()
        entry = ledger.find(names.for_ledger(ledger))
        return self.holding_commit(tip, entry) if entry is not None else None

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

    def holding_commit(self, tip: str, entry: LedgerEntry) -> str:
        """The commit that appended a slice the cube at ``tip`` holds, or ``tip`` itself when
        gc expired that commit."""
        return self._commits.find(self.store.repository, tip, entry) or tip

    def _readonly_store(self, snapshot_id: str) -> Any:
        with translated(self.store.where):
            return self.store.repository.readonly_session(snapshot_id=snapshot_id).store

    def outline_of(self, session: icechunk.Session, append_dim: str) -> CubeOutline | None:
        """The cube's outline in ``session``: kept from our last commit when that is its base."""
        if self._outline_at is not None and self._outline_at[0] == session.snapshot_id:
            return self._outline_at[1]
        return read_outline(session.store, append_dim, where=self.store.where)

    def _dry_run(self, ref: IdentifiedSlice, dataset: xr.Dataset) -> AppendResult:
        outline = self.outline
        dim = outline.append_dim
        if self._dry_run_outline is None and self.store.exists() and not self.start_afresh:
            with translated(self.store.where):
                session = self.store.repository.readonly_session(branch=self.store.branch)
            self._dry_run_outline = read_outline(session.store, dim, where=self.store.where)
        if self._dry_run_outline is None:
            plan = first_slice_plan(dataset, ref.name, outline)
            self._dry_run_outline = CubeOutline.of_dataset(plan.dataset, dim)
        else:
            plan = checked_plan(self._dry_run_outline, dataset, ref.name, outline)
            last = plan.labels[1] if plan.labels is not None else None
            self._dry_run_outline = self._dry_run_outline.extended(plan.index_range[1], last)
        record = record_for_plan(plan, ref.identity, dim)
        return AppendResult(ref.name, ref.identity, "would append", None, record)


@dataclasses.dataclass
class SliceNames:
    """The identities a slice may be recorded under in a ledger: its own, and those of earlier
    content hashes (computed only for a ledger that holds such names, see
    :func:`~versioncube.slices.identity.earlier_identities`)."""

    ref: SliceRef | IdentifiedSlice
    options: SliceOptions
    dataset: xr.Dataset | None = None  # the opened slice, when its identity came from it
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


@dataclasses.dataclass(frozen=True)
class AppendChange:
    """The change an append hands to the commit loop: validate and write one slice into a fresh
    session on the branch tip (run again on the new tip after a conflict)."""

    appender: Appender
    names: SliceNames
    dataset: xr.Dataset
    outline: TargetOutline
    afresh: bool

    @property
    def ref(self) -> IdentifiedSlice:
        return self.names.identified

    def __call__(self, session: icechunk.Session) -> Staged[AppendPayload] | AlreadyCommitted:
        dim, outline = self.outline.append_dim, self.outline
        assert dim is not None
        cube = None if self.afresh else self.appender.outline_of(session, dim)
        if cube is None:
            ledger = Ledger.empty(session.store)
        else:
            ledger = self.appender.current_ledger(session, cube.size)
            if (held := ledger.find(self.names.for_ledger(ledger))) is not None:
                return AlreadyCommitted(self.appender.holding_commit(session.snapshot_id, held))
        plan = checked_plan(cube, self.dataset, self.ref.name, outline)
        attrs = merged_attrs(
            outline.attrs_update_mode,  # type: ignore[arg-type]
            cube.attrs if cube is not None else None,
            plan.dataset.attrs,
            outline.attrs,
        )
        evaluated = outline.permit_eval and has_expressions(outline.attrs)
        record = record_for_plan(plan, self.ref.identity, dim)
        entry = LedgerEntry(
            self.ref.identity,
            plan.index_range,
            record.labels,
            base=session.snapshot_id,
            stamp=self.ref.stamp,
        )
        ledger.add(entry)
        rows = plan.index_range[1]
        after: CubeOutline | None = None
        if plan.creates_cube:
            to_write = with_creation_encoding(plan.dataset.copy(deep=False), outline)
            to_write.attrs = attrs
            to_icechunk(to_write, session, mode="w" if self.afresh else "w-", align_chunks=True)
            ledger.write(session.store, rows)
        elif can_append_in_place(plan.dataset):
            assert cube is not None
            ledger_write = ledger.writing(session.store, rows)
            append_in_place(session.store, plan.dataset, cube, attrs, also=[ledger_write])
            if not evaluated:
                last = plan.labels[1] if plan.labels is not None else None
                after = cube.extended(rows, last, attrs)
        else:
            # dask-backed: written chunk by chunk, rechunked to the cube's chunks as zappend does
            to_write = plan.dataset.copy(deep=False)
            to_write.attrs = attrs
            to_icechunk(to_write, session, append_dim=dim, align_chunks=True)
            ledger.write(session.store, rows)
        if evaluated:
            write_evaluated_attrs(session, outline.attrs, self.appender.store.where)
        return Staged(
            record.message(),
            {},  # no commit metadata: it costs every later commit (see versions/record.py)
            AppendPayload(record, after, ledger),
            self.ref.name,
            trailer=record.trailer(),
        )


def outline_settings(outline: TargetOutline) -> dict[str, Any]:
    """What the repository's metadata keeps of the cube (schema 1 plus the target outline)."""
    return {"schema": 1, **outline.to_metadata()}


def checked_plan(
    cube: CubeOutline | None, dataset: xr.Dataset, slice_name: str, outline: TargetOutline
) -> AppendPlan:
    """Tailor the slice to the target outline and check it against the cube (None: no cube)."""
    dim = outline.append_dim
    assert dim is not None
    tailored = tailor_slice(dataset, outline, slice_name)
    if cube is None:
        return plan_first_slice(tailored, dim, slice_name, step=outline.step)
    converted = {name for name in cube.variables if outline.converts(name)}
    return plan_append(cube, tailored, slice_name, step=outline.step, converted=converted)


def first_slice_plan(dataset: xr.Dataset, slice_name: str, outline: TargetOutline) -> AppendPlan:
    """Check that a slice can start the cube, configured encodings included."""
    plan = checked_plan(None, dataset, slice_name, outline)
    with_creation_encoding(plan.dataset, outline)
    return plan


def with_creation_encoding(dataset: xr.Dataset, outline: TargetOutline) -> xr.Dataset:
    """The first slice with the encodings (and configured variable attributes) the cube
    is created with."""
    dataset = dataset.copy(deep=False)
    dim = outline.append_dim
    assert dim is not None
    for name, update in creation_encoding(dataset, dim, outline).items():
        variable = dataset.variables[name]
        variable.encoding = {**variable.encoding, **update}
    for name, variable in dataset.variables.items():
        configured = outline.variable(str(name)).get("attrs")
        if configured:
            variable.attrs = {**variable.attrs, **configured}
    return dataset


def write_evaluated_attrs(session: icechunk.Session, attrs: Mapping[str, Any], where: str) -> None:
    """Compute the ``{{ }}`` attributes over the whole cube as this session holds it."""
    import zarr

    cube = open_store(session.store, where=where, chunks={})
    zarr.open_group(session.store, mode="r+").attrs.update(evaluate_attrs(attrs, cube))
