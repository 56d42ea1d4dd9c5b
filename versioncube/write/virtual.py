"""Virtual appends: one file becomes one commit of references to its chunks, not a copy.

:func:`append_item` is how every slice is appended (the API, ``Cube.append`` and the CLI
alike): a copied slice goes to :meth:`~versioncube.write.append.Appender.append`, a virtual
one (``virtual`` setting, ``--virtual``) follows the same steps with references:

1. name the slice (its file's identity, as for copies) and skip it when the branch's history
   already holds it, so that a re-run resumes;
2. parse the file (:mod:`versioncube.slices.virtual`), taking its stamp first, and make sure
   the repository has a virtual chunk container for it (:mod:`versioncube.store.containers`);
3. hand a :class:`VirtualAppendChange` to the commit loop: in a fresh session on the tip it
   checks the slice like a copied one (labels, dims, grid) and its references against the
   cube's arrays (:mod:`versioncube.layout.virtual`: codecs, chunks, fill conventions, CF
   attributes, alignment), stores the append coordinate and the other loaded variables
   natively (the coordinate in the cube's time encoding), writes the references along the
   append dimension (variables without it only when the cube is created) with the file's stamp
   as their checksum, and compares the stamp again: a file that changed meanwhile is refused;
4. the commit loop commits once, the record naming the file and its stamp (``virtual``).

The first virtual slice creates a cube with the file's own codecs, chunks and fill conventions
for the referenced variables. Copied slices can follow (they are encoded with the cube's
stored encoding); later virtual slices must match it exactly.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import icechunk
from icechunk.xarray import to_icechunk

from versioncube.config.outline import ResolvedOutline
from versioncube.errors import SliceValidationError
from versioncube.layout.attrs import has_expressions, merged_attrs
from versioncube.layout.decoding import DecodedSlice
from versioncube.layout.outline import CubeOutline
from versioncube.layout.virtual import check_first_references, check_references
from versioncube.slices.identity import IdentifiedSlice, SliceLike, SliceRef, slice_ref
from versioncube.slices.options import SliceOptions
from versioncube.slices.virtual import (
    SourceStamp,
    VirtualSlice,
    open_virtual_slice,
)
from versioncube.store.commit import AlreadyCommitted, CommitOptions, Staged, commit_change
from versioncube.store.containers import ContainerSpec, container_for, location_url
from versioncube.store.translate import translated
from versioncube.write.append import (
    Appender,
    AppendPayload,
    AppendResult,
    SliceNames,
    checked_plan,
    ledger_entry,
    outline_settings,
    record_for_plan,
    staged_append,
    with_creation_encoding,
    write_evaluated_attrs,
)
from versioncube.write.grouped import GroupedAppender
from versioncube.write.in_place import append_in_place
from versioncube.write.references import (
    append_references,
    check_unchanged,
    create_array,
    rehearse_first,
    stored_arrays,
    write_references,
)
from versioncube.write.virtual_groups import append_grouped, is_grouped_virtual


def append_item(
    appender: Appender,
    item: SliceLike,
    *,
    virtual: bool | None = None,
    dry_run: bool = False,
    engine: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    options: CommitOptions | None = None,
) -> AppendResult:
    """Append one slice, copied or (``virtual``, default: the run's setting) referenced."""
    if not (appender.virtual if virtual is None else virtual):
        return appender.append(
            item, dry_run=dry_run, engine=engine, storage_options=storage_options, options=options
        )
    slice_options = appender.slice_options.overridden(
        engine=engine, storage_options=storage_options
    )
    ref = slice_ref(item, slice_options)
    identified = _file_slice(ref, slice_options)
    if (done := appender.commit_holding(SliceNames(identified, slice_options), None)) is not None:
        return AppendResult(identified.name, identified.identity, "skipped", done, None)
    url = location_url(identified.identity)
    files = slice_options.storage_options
    if isinstance(appender, GroupedAppender) and is_grouped_virtual(appender, identified, files):
        container = container_for(url, files, appender.virtual_containers)
        return append_grouped(appender, identified, url, container, files, options, dry_run=dry_run)
    parsed = open_virtual_slice(url, identified.name, files, appender.virtual_group)
    container = container_for(url, files, appender.virtual_containers)
    if dry_run:
        return _dry_run(appender, identified, parsed)
    return _commit(
        appender, identified, parsed, container, files, options or appender.commit_options
    )


def _file_slice(ref: SliceRef, options: SliceOptions) -> IdentifiedSlice:
    """The slice as a file to reference; datasets and slice sources cannot be referenced."""
    if (
        options.source is not None
        or ref.identity is None
        or not isinstance(ref.item, str | os.PathLike)
    ):
        raise SliceValidationError(
            ref.name,
            "virtual slices are files (a path or an s3:// URI): a dataset or a slice source "
            "has no file to reference; append it without --virtual to copy it",
        )
    return IdentifiedSlice(ref.item, ref.identity, ref.name)


def _commit(
    appender: Appender,
    ref: IdentifiedSlice,
    parsed: VirtualSlice,
    container: ContainerSpec,
    files: Mapping[str, Any],
    options: CommitOptions,
) -> AppendResult:
    store = appender.store
    afresh, outline = appender.start_afresh, appender.outline
    access = {container.prefix: container.writer_credentials(files)}
    names = SliceNames(ref, appender.slice_options)
    change = VirtualAppendChange(appender, names, parsed, outline, afresh, files)
    if afresh or not store.exists():
        afresh_change = dataclasses.replace(change, afresh=True)
        rehearse_first(afresh_change, outline.append_dim, container, ref.name)  # refuse first
    if not store.exists():
        store.create(outline_settings(outline), outline.append_dim, [container])
    store.add_containers([container], access)
    committed = commit_change(store.repository, store.target, store.branch, change, options)
    return appender.note_commit(ref, committed, afresh, outline)


def _dry_run(appender: Appender, ref: IdentifiedSlice, parsed: VirtualSlice) -> AppendResult:
    """Check the file as the real run will (labels, dims, then its references) and say what
    would be appended."""
    outline = appender.outline
    stand_in = DecodedSlice(parsed.stand_in(), frozenset())  # references are not decoded
    if appender.store.exists() and not appender.start_afresh:
        with translated(appender.store.where):
            session = appender.store.repository.readonly_session(branch=appender.store.branch)
        cube = appender.outline_of(session, outline.append_dim)
        if cube is not None:
            plan = checked_plan(cube, stand_in, ref.name, outline)
            check_references(
                cube.size,
                stored_arrays(
                    session.store, parsed.references & set(plan.dataset.variables), writable=False
                ),
                parsed.dataset,
                parsed.references & set(plan.dataset.variables),
                outline.append_dim,
                ref.name,
            )
    else:
        check_first_references(
            parsed.dataset, parsed.references, outline.append_dim, ref.name, outline.encoding
        )
    result = appender._dry_run(ref, stand_in)
    record = result.record
    if record is not None:
        record = dataclasses.replace(record, virtual=parsed.stamp.to_json())
    return dataclasses.replace(result, record=record)


@dataclasses.dataclass(frozen=True)
class VirtualAppendChange:
    """The change a virtual append hands to the commit loop (see the module docstring)."""

    appender: Appender
    names: SliceNames
    parsed: VirtualSlice
    outline: ResolvedOutline
    afresh: bool
    files: Mapping[str, Any]  # the slices' storage options, to stamp the file again

    @property
    def ref(self) -> IdentifiedSlice:
        return self.names.identified

    def __call__(self, session: icechunk.Session) -> Staged[AppendPayload] | AlreadyCommitted:
        dim, outline, parsed = self.outline.append_dim, self.outline, self.parsed
        cube = None if self.afresh else self.appender.outline_of(session, dim)
        ledger = self.appender.ledger_for(session, self.names, cube.size if cube else None)
        if isinstance(ledger, AlreadyCommitted):
            return ledger
        stand_in = DecodedSlice(parsed.stand_in(), frozenset())
        plan = checked_plan(cube, stand_in, self.ref.name, outline)
        names = [str(name) for name in plan.dataset.variables]
        referenced = [name for name in names if name in parsed.references]
        attrs = merged_attrs(
            outline.attrs_update_mode,
            cube.attrs if cube is not None else None,
            plan.dataset.attrs,
            outline.attrs,
        )
        evaluated = outline.permit_eval and has_expressions(outline.attrs)
        checksum = parsed.stamp.checksum()
        record = record_for_plan(plan, self.ref.identity, dim)
        record = dataclasses.replace(record, virtual=parsed.stamp.to_json())
        ledger.add(ledger_entry(record, self.ref, session))
        rows = plan.index_range[1]
        after: CubeOutline | None = None
        if cube is None:
            check_first_references(parsed.dataset, referenced, dim, self.ref.name, outline.encoding)
            natives = with_creation_encoding(plan.dataset.drop_vars(referenced), outline)
            natives.attrs = attrs
            to_icechunk(natives, session, mode="w" if self.afresh else "w-", align_chunks=True)
            for name in referenced:
                create_array(session.store, name, parsed.dataset.variables[name])
                variable = parsed.dataset.variables[name]
                write_references(session.store, name, variable, 0, dim, checksum, self.ref.name)
            ledger.write(session.store, rows)
        else:
            arrays = stored_arrays(session.store, referenced)
            check_references(cube.size, arrays, parsed.dataset, referenced, dim, self.ref.name)
            natives = plan.dataset.drop_vars(referenced)
            ledger_write = ledger.writing(session.store, rows)
            append_in_place(session.store, natives, cube, attrs, also=[ledger_write])
            variables = {name: parsed.dataset.variables[name] for name in referenced}
            append_references(
                session.store, arrays, variables, cube.size, dim, checksum, self.ref.name
            )
            if not evaluated:
                last = plan.labels[1] if plan.labels is not None else None
                after = cube.extended(rows, last, attrs)
        if evaluated:
            write_evaluated_attrs(session, outline.attrs, self.appender.store.where)
        check_unchanged(parsed.url, parsed.stamp, self.files, self.ref.name)
        return staged_append(record, after, ledger, self.ref.name)


__all__ = ["SourceStamp", "VirtualAppendChange", "append_item"]
