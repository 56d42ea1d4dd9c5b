"""Appending to a cube of groups: a multi-level pyramid or a tree, every group in one commit.

:class:`GroupedAppender` is the :class:`~versioncube.write.append.Appender` every ``Cube``
uses: a flat slice for a flat cube goes the flat way, unchanged; a slice for a cube with
``levels``, an ``xarray.DataTree``, or any slice for a cube created from a tree becomes a
:class:`GroupedAppendChange`. That change, in one writable session on the branch tip, reads
the outline of every group, computes the slice's groups (the downsampled levels, lazily, or
the tree's nodes, see :mod:`versioncube.layout.groups`), checks each against its group
(messages name the group) and all of them against each other (the same rows everywhere),
then writes each group and commits once. An interrupted append therefore leaves every group
as it was: the levels of a pyramid, and the nodes of a tree, always have the same length.

Slice files are read as trees (``xarray.open_datatree``) for a cube created from a tree, and,
for a cube's first slice, when the file has groups (NetCDF4/HDF5 or Zarr groups).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import icechunk
import xarray as xr

from versioncube.config.model import Config
from versioncube.config.outline import ResolvedOutline
from versioncube.errors import SliceValidationError
from versioncube.layout.attrs import has_expressions, merged_attrs
from versioncube.layout.groups import (
    ROOT,
    GroupedPlan,
    GroupedSlice,
    GroupsOutline,
    grouped_slice,
    in_group,
    noted_group,
    plan_grouped,
    read_groups_outline,
)
from versioncube.layout.levels import fit_chunks
from versioncube.layout.outline import CubeOutline
from versioncube.slices.identity import IdentifiedSlice, SliceLike
from versioncube.store.commit import AlreadyCommitted, Change, CommitOptions, Staged
from versioncube.store.repository import CubeStore
from versioncube.store.translate import translated
from versioncube.versions.ledger import Ledger
from versioncube.versions.record import CommitRecord
from versioncube.write.append import (
    Appender,
    AppendPayload,
    AppendResult,
    PreparedSlice,
    SliceNames,
    ledger_entry,
    record_for_plan,
    staged_append,
    tree_or_dataset,
    with_creation_encoding,
    write_evaluated_attrs,
)
from versioncube.write.distributed import LazyWriter
from versioncube.write.in_place import GroupAppend, append_groups_in_place, can_append_in_place

#: The repository-settings key that marks a cube created from a tree of groups.
LAYOUT_KEY = "layout"
TREE_LAYOUT = "tree"


class GroupedAppender(Appender):
    """An Appender for flat cubes, pyramids and trees alike (see the module docstring)."""

    def __init__(self, store: CubeStore, config: Config):
        super().__init__(store, config)
        self._grouped_dry_run: GroupsOutline | None = None

    def append(self, item: SliceLike, **options: Any) -> AppendResult:
        """Append one slice as one commit (files read as trees when the cube is a tree)."""
        groups = self.files_as_trees()
        if self.slice_options.groups != groups:
            self.slice_options = dataclasses.replace(self.slice_options, groups=groups)
        return super().append(item, **options)

    def forget(self) -> None:
        super().forget()
        self._grouped_dry_run = None

    def is_tree_cube(self) -> bool:
        """Whether the cube (as it stands, not started afresh) was created from a tree."""
        if self.start_afresh or not self.store.exists():
            return False
        return self.store.settings().get(LAYOUT_KEY) == TREE_LAYOUT

    def is_grouped(self, data: PreparedSlice, outline: ResolvedOutline) -> bool:
        """Whether the slice is appended group by group (else the flat way)."""
        return isinstance(data, xr.DataTree) or outline.levels is not None or self.is_tree_cube()

    def groups_outline_of(self, session: icechunk.Session, append_dim: str) -> GroupsOutline | None:
        """Every group's outline in ``session``: kept from our last commit when that is its
        base, else read (a flat cube reads as a tree of one group)."""
        kept = self.kept_outline(session)
        if isinstance(kept, GroupsOutline):
            return kept
        return read_groups_outline(session.store, append_dim, where=self.store.where)

    def files_as_trees(self) -> bool | None:
        """Read slice files as trees (a tree cube), as datasets (a flat cube, a pyramid, whose
        levels are made from one dataset), or as the file holds them (a new cube). Asked on
        every append, so it reads only what is kept: no outline is reconciled here."""
        if self.configured.levels is not None:
            return False
        if self.start_afresh or not self.store.exists():
            return None
        settings = self.store.settings()
        return settings.get("levels") is None and settings.get(LAYOUT_KEY) == TREE_LAYOUT

    # -- the hooks of the append pipeline ---------------------------------------------------

    def change_for(
        self, names: SliceNames, dataset: PreparedSlice, outline: ResolvedOutline, afresh: bool
    ) -> Change[AppendPayload]:
        if not self.is_grouped(dataset, outline):
            return super().change_for(names, dataset, outline, afresh)
        return GroupedAppendChange(self, names, dataset, outline, afresh)

    def settings_for(self, dataset: PreparedSlice, outline: ResolvedOutline) -> dict[str, Any]:
        settings = super().settings_for(dataset, outline)
        if outline.levels is None and self.is_grouped(dataset, outline):
            settings[LAYOUT_KEY] = TREE_LAYOUT
        return settings

    def check_first_slice(
        self, ref: IdentifiedSlice, dataset: PreparedSlice, outline: ResolvedOutline
    ) -> None:
        if not self.is_grouped(dataset, outline):
            return super().check_first_slice(ref, dataset, outline)
        grouped = grouped_slice(tree_or_dataset(dataset), outline, None, ref.name)
        plan = plan_grouped(None, grouped, ref.name, outline)
        for path in grouped.groups:  # a configured encoding that does not fit fails here
            prepared_group(plan, grouped, path, outline)

    def rehearse_first_slice(
        self, ref: IdentifiedSlice, dataset: PreparedSlice, outline: ResolvedOutline
    ) -> None:
        """The rehearsal of the flat path, its message naming the group that failed."""
        try:
            super().rehearse_first_slice(ref, dataset, outline)
        except SliceValidationError as error:
            group = noted_group(error.__cause__)
            if group is None:
                raise
            raise SliceValidationError(ref.name, f"{group}: {error.reason}") from error.__cause__

    def _commit(
        self, names: SliceNames, dataset: PreparedSlice, options: CommitOptions
    ) -> AppendResult:
        afresh = self.start_afresh
        result = super()._commit(names, dataset, options)
        if afresh:
            self._grouped_dry_run = None
        return result

    def _dry_run(self, ref: IdentifiedSlice, data: PreparedSlice) -> AppendResult:
        outline = self.outline
        if not self.is_grouped(data, outline):
            return super()._dry_run(ref, data)
        dim, where = outline.append_dim, self.store.where
        if self._grouped_dry_run is None and self.store.exists() and not self.start_afresh:
            with translated(where):
                session = self.store.repository.readonly_session(branch=self.store.branch)
            self._grouped_dry_run = read_groups_outline(session.store, dim, where=where)
        cube = self._grouped_dry_run
        if cube is None:
            self.rehearse_first_slice(ref, data, outline)
            grouped = grouped_slice(tree_or_dataset(data), outline, None, ref.name)
            plan = plan_grouped(None, grouped, ref.name, outline)
            self._grouped_dry_run = created_outline(plan, grouped, outline)
        else:
            grouped = grouped_slice(tree_or_dataset(data), outline, cube, ref.name)
            plan = plan_grouped(cube, grouped, ref.name, outline)
            rows = plan.rows
            last = rows.labels[1] if rows.labels is not None else None
            self._grouped_dry_run = cube.extended(rows.index_range[1], last, {})
        record = grouped_record(plan, ref.identity, dim, ref.stamp)
        return AppendResult(ref.name, ref.identity, "would append", None, record)


@dataclasses.dataclass(frozen=True)
class GroupedAppendChange:
    """The change that appends one slice to every group of a cube in one session (run again
    on the new tip after a conflict)."""

    appender: GroupedAppender
    names: SliceNames
    source: PreparedSlice
    outline: ResolvedOutline
    afresh: bool

    @property
    def ref(self) -> IdentifiedSlice:
        return self.names.identified

    def __call__(self, session: icechunk.Session) -> Staged[AppendPayload] | AlreadyCommitted:
        outline, where = self.outline, self.appender.store.where
        dim = outline.append_dim
        cube = None if self.afresh else self.appender.groups_outline_of(session, dim)
        ledger = self.appender.ledger_for(session, self.names, cube.size if cube else None)
        if isinstance(ledger, AlreadyCommitted):
            return ledger
        grouped = grouped_slice(tree_or_dataset(self.source), outline, cube, self.ref.name)
        plan = plan_grouped(cube, grouped, self.ref.name, outline)
        attrs = group_attrs(grouped, cube, outline)
        record = grouped_record(plan, self.ref.identity, dim, self.ref.stamp)
        ledger.add(ledger_entry(record, self.ref, session))
        rows = plan.rows.index_range[1]
        after: GroupsOutline | None = None
        if cube is None:
            # every group first (afresh, the root's "w" clears the old ledger too), then the
            # ledger, new, beside them
            writer = self.appender.lazy
            create_groups(session, plan, grouped, outline, attrs, self.afresh, writer)
            ledger.write(session.store, rows)
        elif append_groups(session, plan, cube, attrs, dim, ledger, self.appender.lazy):
            last = plan.rows.labels[1] if plan.rows.labels is not None else None
            after = cube.extended(rows, last, attrs)
        if outline.permit_eval and has_expressions(outline.attrs):
            for path in configured_groups(grouped):
                write_evaluated_attrs(session, outline.attrs, where, path or None)
            after = None  # the evaluated attributes are known by reading them back
        return staged_append(record, after, ledger, self.ref.name)


def grouped_record(
    plan: GroupedPlan, identity: str, append_dim: str, stamp: str | None = None
) -> CommitRecord:
    """The commit record of a grouped append: the rows and labels, and the groups."""
    record = record_for_plan(plan.rows, identity, append_dim, stamp)
    return dataclasses.replace(record, groups=plan.group_paths)


def configured_groups(grouped: GroupedSlice) -> list[str]:
    """The groups the configured ``attrs`` apply to: every level of a pyramid (each is a whole
    dataset, as xcube writes them), the root of a tree."""
    if grouped.kind == "levels":
        return [path for path in grouped.groups if path != ROOT]
    return [ROOT]


def group_attrs(
    grouped: GroupedSlice, cube: GroupsOutline | None, outline: ResolvedOutline
) -> dict[str, dict[str, Any]]:
    """Every group's attributes after the append (``attrs_update_mode`` per group; the root of
    a pyramid holds the pyramid's description only)."""
    configured = set(configured_groups(grouped))
    attrs: dict[str, dict[str, Any]] = {}
    for path, dataset in grouped.groups.items():
        if grouped.kind == "levels" and path == ROOT:
            attrs[path] = dict(dataset.attrs)
            continue
        stored = cube.groups[path].attrs if cube is not None else None
        extra = outline.attrs if path in configured else {}
        attrs[path] = merged_attrs(outline.attrs_update_mode, stored, dataset.attrs, extra)
    return attrs


def prepared_group(
    plan: GroupedPlan, grouped: GroupedSlice, path: str, outline: ResolvedOutline
) -> xr.Dataset:
    """A group as the cube is created with it: configured encodings, level chunks."""
    dataset = plan.written(path)
    assert dataset is not None
    with in_group(grouped.label(path)):
        prepared = with_creation_encoding(dataset, outline)
        if grouped.levels is not None and path != ROOT:
            prepared = fit_chunks(prepared, grouped.levels, outline.append_dim)
    return prepared


def created_outline(
    plan: GroupedPlan, grouped: GroupedSlice, outline: ResolvedOutline
) -> GroupsOutline:
    """The outline of the cube a first slice creates (for dry runs)."""
    groups = {
        path: CubeOutline.of_dataset(
            prepared_group(plan, grouped, path, outline), outline.append_dim
        )
        for path in grouped.groups
    }
    return GroupsOutline(grouped.kind, groups, grouped.levels)


def create_groups(
    session: icechunk.Session,
    plan: GroupedPlan,
    grouped: GroupedSlice,
    outline: ResolvedOutline,
    attrs: dict[str, dict[str, Any]],
    afresh: bool,
    writer: LazyWriter | None = None,
) -> None:
    """Write every group of a new cube, parents first (afresh: replacing all that was there);
    dask-backed groups by ``writer`` (on the run's dask cluster, if any)."""
    writer = writer or LazyWriter()
    for path in grouped.groups:
        to_write = prepared_group(plan, grouped, path, outline)
        to_write.attrs = attrs[path]
        mode: Literal["w", "w-"] = "w" if afresh and path == ROOT else "w-"
        label = grouped.label(path)
        with in_group(label):
            writer.write(
                to_write,
                session,
                f"{plan.slice_name} ({label})",
                append_dim=outline.append_dim,
                group=path or None,
                mode=mode,
            )


def append_groups(
    session: icechunk.Session,
    plan: GroupedPlan,
    cube: GroupsOutline,
    attrs: dict[str, dict[str, Any]],
    append_dim: str,
    ledger: Ledger,
    writer: LazyWriter | None = None,
) -> bool:
    """Append each group's rows and set each group's attributes: in-memory rows in place, all
    groups in one trip to Zarr, with the slice ledger; dask-backed rows chunk by chunk through
    ``to_icechunk`` first. Returns whether every group was appended in place (then the outline
    after the append is known without reading it)."""
    in_place: list[GroupAppend] = []
    everything_in_place = True
    for path, stored in cube.groups.items():
        rows = plan.written(path)
        if rows is not None and not can_append_in_place(rows):
            to_write = rows.copy(deep=False)
            to_write.attrs = attrs[path]
            (writer or LazyWriter()).write(
                to_write,
                session,
                f"{plan.slice_name} (group {path or '/'})",
                append_dim=append_dim,
                offset=stored.size,
                group=path or None,
            )
            everything_in_place = False
        else:
            in_place.append((path, rows, stored, attrs[path]))
    ledger_write = ledger.writing(session.store, plan.rows.index_range[1])
    append_groups_in_place(session.store, in_place, also=[ledger_write])
    return everything_in_place
