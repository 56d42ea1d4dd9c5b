"""Virtual appends to a cube of groups: a pyramid's level 0, or every group of a tree, as
references, in the one commit that writes every group.

:func:`versioncube.write.virtual.append_item` hands a virtual slice here when the cube is a
pyramid (``levels``) or a tree (created from a file with groups, or this file has groups and
starts the cube):

* **pyramid**: the file (or its ``virtual_group``) is parsed as for a flat cube; level 0 is its
  references, checked exactly as a flat virtual append's (dtype, chunks, codecs, fill
  conventions, CF attributes, alignment), with the append coordinate and the other loaded
  variables stored natively; the downsampled levels are computed from the file's values, read
  through the parser's references (nothing else opens the file), and written natively: they
  are copies, as a pyramid's levels are computed;
* **tree**: every group of a NetCDF4/HDF5 file is parsed; every group is its references (the
  groups with the append dimension appended, the others written once, by the commit that
  creates the cube), checked group by group, each message naming the group.

Everything else is the grouped append's (:mod:`versioncube.write.grouped`): the same checks
of every group against the cube and of the groups against each other (the same rows
everywhere), the same attributes, record (plus the file and its stamp) and slice ledger, in
one change handed to the commit loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import icechunk
from icechunk.xarray import to_icechunk

from versioncube.config.outline import ResolvedOutline
from versioncube.errors import ConfigError
from versioncube.layout.attrs import has_expressions
from versioncube.layout.decoding import DecodedSlice
from versioncube.layout.groups import (
    ROOT,
    GroupedPlan,
    GroupedSlice,
    GroupKind,
    GroupsOutline,
    group_label,
    grouped_slice,
    in_group,
    plan_grouped,
    read_groups_outline,
)
from versioncube.layout.virtual import check_first_references, check_references
from versioncube.slices.identity import IdentifiedSlice
from versioncube.slices.virtual import (
    SourceStamp,
    VirtualSlice,
    has_subgroups,
    open_virtual_slice,
    open_virtual_tree,
)
from versioncube.store.commit import AlreadyCommitted, CommitOptions, Staged, commit_change
from versioncube.store.containers import ContainerSpec, location_url
from versioncube.store.translate import translated
from versioncube.versions.ledger import Ledger
from versioncube.write.append import (
    AppendPayload,
    AppendResult,
    PreparedSlice,
    SliceNames,
    first_step,
    ledger_entry,
    staged_append,
    tree_or_dataset,
    write_evaluated_attrs,
)
from versioncube.write.grouped import (
    GroupedAppender,
    configured_groups,
    group_attrs,
    grouped_record,
    prepared_group,
)
from versioncube.write.in_place import GroupAppend, append_groups_in_place, can_append_in_place
from versioncube.write.references import (
    append_references,
    check_unchanged,
    create_array,
    rehearse_first,
    stored_arrays,
    write_references,
)

#: The level of a pyramid that is referenced (the others are computed from it).
REFERENCED_LEVEL = "0"


def is_grouped_virtual(
    appender: GroupedAppender, ref: IdentifiedSlice, files: Mapping[str, Any]
) -> bool:
    """Whether a virtual slice goes to the groups of a cube: the cube is a pyramid or a tree,
    or the file starts a cube and has groups (with no ``virtual_group`` chosen)."""
    if appender.outline.levels is not None or appender.is_tree_cube():
        return True
    if appender.store.exists() and not appender.start_afresh:
        return False
    if appender.virtual_group is not None:
        return False
    return has_subgroups(location_url(ref.identity), ref.name, files)


@dataclasses.dataclass(frozen=True)
class ParsedFile:
    """A file parsed for a cube of groups: the slice the checks and the native groups are made
    from, and the referenced groups (group path -> its references)."""

    kind: GroupKind
    source: PreparedSlice
    referenced: Mapping[str, VirtualSlice]
    url: str
    stamp: SourceStamp


def parse_file(
    appender: GroupedAppender, ref: IdentifiedSlice, url: str, files: Mapping[str, Any]
) -> ParsedFile:
    """Parse the file as the cube needs it: one group (a pyramid's level 0, whose values make
    the other levels) or every group (a tree)."""
    if appender.outline.levels is not None:
        parsed = open_virtual_slice(url, ref.name, files, appender.virtual_group)
        source = DecodedSlice(parsed.values(), frozenset())
        return ParsedFile("levels", source, {REFERENCED_LEVEL: parsed}, url, parsed.stamp)
    if appender.virtual_group is not None:
        raise ConfigError(
            f"virtual_group ({appender.virtual_group!r}) chooses one group of each file, but "
            f"the cube at {appender.store.where} is a tree, which references every group of "
            "a file; remove virtual_group"
        )
    tree = open_virtual_tree(url, ref.name, files)
    return ParsedFile("tree", tree.stand_in(), tree.groups, url, tree.stamp)


def append_grouped(
    appender: GroupedAppender,
    ref: IdentifiedSlice,
    url: str,
    container: ContainerSpec,
    files: Mapping[str, Any],
    options: CommitOptions | None,
    *,
    dry_run: bool = False,
) -> AppendResult:
    """Append a virtual slice to a pyramid or a tree as one commit (see the module docstring)."""
    parsed = parse_file(appender, ref, url, files)
    if dry_run:
        return _dry_run(appender, ref, parsed)
    store, outline = appender.store, appender.outline
    afresh, dim = appender.start_afresh, outline.append_dim
    names = SliceNames(ref, appender.slice_options)
    change = VirtualGroupsChange(appender, names, parsed, outline, afresh, files)
    settings: dict[str, Any] | None = None
    if afresh or not store.exists():
        # refuse before creating anything; a pyramid's levels are rehearsed on one step
        rehearsed = parsed
        if parsed.kind == "levels":
            rehearsed = dataclasses.replace(parsed, source=first_step(parsed.source, dim))
        rehearsal = dataclasses.replace(change, parsed=rehearsed, afresh=True)
        rehearse_first(rehearsal, dim, container, ref.name)
        settings = appender.settings_for(parsed.source, outline)
    if not store.exists():
        assert settings is not None
        store.create(settings, dim, [container])
    store.add_containers([container], {container.prefix: container.writer_credentials(files)})
    committed = commit_change(
        store.repository, store.target, store.branch, change, options or appender.commit_options
    )
    return appender.note_commit(ref, committed, afresh, outline, settings)


def _dry_run(appender: GroupedAppender, ref: IdentifiedSlice, parsed: ParsedFile) -> AppendResult:
    """Check the file as the real run will (every group, then the references) and say what
    would be appended."""
    outline, store = appender.outline, appender.store
    dim = outline.append_dim
    cube: GroupsOutline | None = None
    if store.exists() and not appender.start_afresh:
        with translated(store.where):
            session = store.repository.readonly_session(branch=store.branch)
        cube = read_groups_outline(session.store, dim, where=store.where)
    if cube is not None:
        grouped = grouped_slice(tree_or_dataset(parsed.source), outline, cube, ref.name)
        plan = plan_grouped(cube, grouped, ref.name, outline)
        for path, references in parsed.referenced.items():
            rows = plan.written(path)
            if rows is None:
                continue
            referenced = sorted(references.references & set(map(str, rows.variables)))
            with in_group(grouped.label(path)):
                arrays = stored_arrays(session.store, referenced, path, writable=False)
                check_references(cube.size, arrays, references.dataset, referenced, dim, ref.name)
    else:
        for path, references in parsed.referenced.items():
            with in_group(group_label(parsed.kind, path)):
                check_first_references(
                    references.dataset, references.references, dim, ref.name, outline.encoding
                )
    result = appender._dry_run(ref, parsed.source)
    record = result.record
    if record is not None:
        record = dataclasses.replace(record, virtual=parsed.stamp.to_json())
    return dataclasses.replace(result, record=record)


@dataclasses.dataclass(frozen=True)
class VirtualGroupsChange:
    """The change a virtual append to a cube of groups hands to the commit loop (run again on
    the new tip after a conflict)."""

    appender: GroupedAppender
    names: SliceNames
    parsed: ParsedFile
    outline: ResolvedOutline
    afresh: bool
    files: Mapping[str, Any]  # the slices' storage options, to stamp the file again

    @property
    def ref(self) -> IdentifiedSlice:
        return self.names.identified

    def __call__(self, session: icechunk.Session) -> Staged[AppendPayload] | AlreadyCommitted:
        outline, where, parsed = self.outline, self.appender.store.where, self.parsed
        dim = outline.append_dim
        cube = None if self.afresh else self.appender.groups_outline_of(session, dim)
        ledger = self.appender.ledger_for(session, self.names, cube.size if cube else None)
        if isinstance(ledger, AlreadyCommitted):
            return ledger
        grouped = grouped_slice(tree_or_dataset(parsed.source), outline, cube, self.ref.name)
        plan = plan_grouped(cube, grouped, self.ref.name, outline)
        attrs = group_attrs(grouped, cube, outline)
        record = grouped_record(plan, self.ref.identity, dim)
        record = dataclasses.replace(record, virtual=parsed.stamp.to_json())
        ledger.add(ledger_entry(record, self.ref, session))
        rows = plan.rows.index_range[1]
        after: GroupsOutline | None = None
        if cube is None:
            self._create(session, grouped, plan, attrs)
            ledger.write(session.store, rows)
        elif self._append(session, grouped, plan, cube, attrs, ledger):
            last = plan.rows.labels[1] if plan.rows.labels is not None else None
            after = cube.extended(rows, last, attrs)
        if outline.permit_eval and has_expressions(outline.attrs):
            for path in configured_groups(grouped):
                write_evaluated_attrs(session, outline.attrs, where, path or None)
            after = None
        check_unchanged(parsed.url, parsed.stamp, self.files, self.ref.name)
        return staged_append(record, after, ledger, self.ref.name)

    def _create(
        self,
        session: icechunk.Session,
        grouped: GroupedSlice,
        plan: GroupedPlan,
        attrs: Mapping[str, dict[str, Any]],
    ) -> None:
        """Every group of a new cube, parents first: referenced variables as references, the
        others (and the other levels of a pyramid) natively."""
        dim, name = self.outline.append_dim, self.ref.name
        checksum = self.parsed.stamp.checksum()
        for path in grouped.groups:
            references = self.parsed.referenced.get(path)
            with in_group(grouped.label(path)):
                written = plan.written(path)
                assert written is not None
                referenced = sorted(
                    references.references & set(map(str, written.variables))
                    if references is not None
                    else ()
                )
                if references is not None:
                    check_first_references(
                        references.dataset, referenced, dim, name, self.outline.encoding
                    )
                to_write = prepared_group(plan, grouped, path, self.outline).drop_vars(referenced)
                to_write.attrs = attrs[path]
                mode: Literal["w", "w-"] = "w" if self.afresh and path == ROOT else "w-"
                to_icechunk(to_write, session, group=path or None, mode=mode, align_chunks=True)
                for variable_name in referenced:
                    assert references is not None
                    variable = references.dataset.variables[variable_name]
                    create_array(session.store, variable_name, variable, path)
                    write_references(
                        session.store, variable_name, variable, 0, dim, checksum, name, path
                    )

    def _append(
        self,
        session: icechunk.Session,
        grouped: GroupedSlice,
        plan: GroupedPlan,
        cube: GroupsOutline,
        attrs: Mapping[str, dict[str, Any]],
        ledger: Ledger,
    ) -> bool:
        """Append each group's rows: references after checking them against the group's
        arrays, the rest natively (in place for in-memory rows, all groups and the ledger in
        one trip to Zarr). Returns whether every group was appended in place."""
        dim, name = self.outline.append_dim, self.ref.name
        checksum = self.parsed.stamp.checksum()
        in_place: list[GroupAppend] = []
        to_reference: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        everything_in_place = True
        for path, stored in cube.groups.items():
            rows = plan.written(path)
            references = self.parsed.referenced.get(path)
            if rows is not None and references is not None:
                referenced = sorted(references.references & set(map(str, rows.variables)))
                with in_group(grouped.label(path)):
                    arrays = stored_arrays(session.store, referenced, path)
                    check_references(cube.size, arrays, references.dataset, referenced, dim, name)
                variables = {key: references.dataset.variables[key] for key in referenced}
                to_reference.append((path, arrays, variables))
                rows = rows.drop_vars(referenced)
            if rows is not None and not can_append_in_place(rows):
                to_write = rows.copy(deep=False)
                to_write.attrs = attrs[path]
                to_icechunk(
                    to_write, session, group=path or None, append_dim=dim, align_chunks=True
                )
                everything_in_place = False
            else:
                in_place.append((path, rows, stored, attrs[path]))
        ledger_write = ledger.writing(session.store, plan.rows.index_range[1])
        append_groups_in_place(session.store, in_place, also=[ledger_write])
        for path, arrays, variables in to_reference:
            append_references(
                session.store, arrays, variables, cube.size, dim, checksum, name, path
            )
        return everything_in_place


__all__ = ["VirtualGroupsChange", "append_grouped", "is_grouped_virtual"]
