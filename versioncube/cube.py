"""A cube is an Icechunk repository plus a branch: :class:`Cube` is its face in Python.

Every method is a thin layer over the core: appends go to the append pipeline
(:mod:`versioncube.write.append`), version operations to :mod:`versioncube.versions`, storage
to :mod:`versioncube.store`. Each method translates foreign errors in one way
(:func:`versioncube.store.translate.translated`), so a user sees a ``VersionCubeError`` naming
the cube, never an Icechunk or Zarr traceback, for anything foreseeable.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate

from versioncube.config import Config, ConfigLike, load_config
from versioncube.config.outline import ResolvedOutline
from versioncube.display import html, palette
from versioncube.display.json import JsonValue
from versioncube.errors import ConfigError, VersionCubeError, VersionError
from versioncube.slices.identity import SliceLike
from versioncube.store.commit import CommitOptions, RetryPolicy
from versioncube.store.containers import check_version_authorised
from versioncube.store.groups import (
    VersionLevels,
    open_cube_version,
    open_tree_version,
    version_levels,
)
from versioncube.store.repository import CubeStore
from versioncube.store.target import Target, TargetLike, parse_target
from versioncube.store.translate import translated
from versioncube.versions import branches as branch_ops
from versioncube.versions import tags as tag_ops
from versioncube.versions.coverage import Coverage, label_coverage
from versioncube.versions.diff import CubeDiff, diff_versions
from versioncube.versions.difference import ValueDifference, value_difference
from versioncube.versions.export import ExportResult, ZarrFormat, export_version
from versioncube.versions.history import CubeHistory, cube_history, tip_labels
from versioncube.versions.log import Log, LogPage, Reflog, branch_log, read_reflog
from versioncube.versions.refs import (
    ResolvedVersion,
    VersionLike,
    moment,
    ref_names,
    resolve_version,
)
from versioncube.versions.retention import GcResult, collect_garbage, parse_duration
from versioncube.versions.summary import CubeInfo, describe_version
from versioncube.versions.verify import VerifyReport, verify_version
from versioncube.write.append import AppendResult
from versioncube.write.grouped import GroupedAppender
from versioncube.write.materialize import MaterializeResult, materialize
from versioncube.write.run import RunSummary, append_slices
from versioncube.write.schema import SchemaChangeResult, VariableData, add_variable, drop_variable
from versioncube.write.updates import WriteResult, delete_labels, write_item
from versioncube.write.virtual import append_item

if TYPE_CHECKING:
    import icechunk
    import xarray as xr
    from matplotlib.figure import Figure


def _translated[**P, R](
    method: Callable[Concatenate[Cube, P], R],
) -> Callable[Concatenate[Cube, P], R]:
    """Run a Cube method with foreign errors translated (naming the cube's target)."""

    @functools.wraps(method)
    def wrapper(self: Cube, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with translated(self.target.uri):
            return method(self, *args, **kwargs)

    return wrapper


class Cube:
    """A datacube at a target (an Icechunk repository) on one branch.

    Creating a Cube reads nothing; the repository is opened on first use and created by the
    first append. ``config`` gives the run's settings (target outline, slice options,
    ``force_new``, retries); the target and branch given here win over its ``target_*`` keys.
    """

    def __init__(
        self,
        target: Target,
        branch: str = "main",
        *,
        append_dim: str | None = None,
        config: Config | None = None,
    ):
        config = config or Config()
        if append_dim is not None:
            config = dataclasses.replace(config, append_dim=append_dim)
        self.config = config
        self.store = CubeStore(target, branch, config.virtual_credentials)
        self._appender = GroupedAppender(self.store, config)

    @property
    def target(self) -> Target:
        return self.store.target

    @property
    def branch(self) -> str:
        return self.store.branch

    def __repr__(self) -> str:
        return f"Cube({self.target.uri!r}, branch={self.branch!r})"

    def describe(self) -> str:
        """Where the cube is: target and branch, and its tip when it exists."""
        where = f"cube {self.target.uri} (branch {self.branch})"
        if not self.exists():
            return f"{where}: no data yet"
        return f"{where} at {self.store.tip()[:12]}"

    def to_json(self) -> JsonValue:
        tip = self.store.tip() if self.exists() else None
        return {"target": self.target.uri, "branch": self.branch, "tip": tip}

    def _repr_html_(self) -> str:
        """The cube at a glance: where it is, its tip's dims, variables, labels and size (see
        :meth:`info`), and its tags, in collapsible sections like xarray's."""
        kind, where = "versioncube.Cube", f"branch {self.branch}"
        if not self.exists():
            return html.card(kind, self.target.uri, html.muted(f"{where}: no data yet"))
        try:
            info, tags = self.info(), self.tags()
        except VersionCubeError as error:  # a damaged cube still shows where it is
            problem = html.colored(f"cannot be read: {error}", palette.DAMAGE)
            return html.card(kind, self.target.uri, html.muted(where), problem)
        tip = html.muted(f"{where} at {info.snapshot_id[:12]}")
        sections = info.html_sections()
        if tags:
            sections.append(html.section("Tags", tags.html_table(), count=len(tags)))
        return html.card(kind, self.target.uri, tip, *sections)

    # -- reading -----------------------------------------------------------------------------

    @property
    def repository(self) -> icechunk.Repository:
        """The Icechunk repository (raises CubeNotFoundError when there is none yet)."""
        return self.store.repository

    def exists(self) -> bool:
        """Whether the target holds a repository with this branch."""
        return self.store.exists()

    @property
    def outline(self) -> ResolvedOutline:
        """The target outline: the one stored with the cube, else the configured one.

        A configured setting that contradicts the stored outline raises ConfigError.
        """
        return self._appender.outline

    @property
    def append_retry(self) -> RetryPolicy:
        """What appends do when another writer commits first (``on_conflict``, ``max_retries``)."""
        return self._appender.commit_options.retry

    @property
    def append_dim(self) -> str:
        """The cube's append dimension: the one it was created with, else the configured one."""
        return self.outline.append_dim

    @_translated
    def to_xarray(
        self,
        /,
        version: VersionLike = None,
        *,
        level: int | None = None,
        group: str | None = None,
        **xarray_options: Any,
    ) -> xr.Dataset:
        """The cube as it is at the branch tip, or as it was at ``version``, lazily (dask).

        ``version``: a tag, branch, ``BRANCH~N``/``~N``, snapshot id (or a unique prefix), or
        an ISO 8601 date-time / ``datetime`` meaning "as of" (see :mod:`versioncube.versions.
        refs`). ``level``: a level of a pyramid (default: level 0, the finest); ``group``: a
        group of a tree, by its path (``"/atmos"``; default: the root). ``xarray_options`` go
        to ``xarray.open_dataset`` (``chunks={}`` by default).
        """
        resolved = self.resolve(version)
        where = self._where(version, resolved)
        options = {"chunks": {}, **xarray_options}
        check_version_authorised(self.repository, resolved.snapshot_id, where)
        return open_cube_version(
            self.repository, resolved.snapshot_id, level=level, group=group, where=where, **options
        )

    @_translated
    def to_datatree(self, /, version: VersionLike = None, **xarray_options: Any) -> xr.DataTree:
        """The cube (every group of it: the levels of a pyramid, the nodes of a tree; a flat
        cube is a tree of one node) at the tip or at ``version``, as a lazy DataTree."""
        resolved = self.resolve(version)
        options = {"chunks": {}, **xarray_options}
        where = self._where(version, resolved)
        check_version_authorised(self.repository, resolved.snapshot_id, where)
        return open_tree_version(self.repository, resolved.snapshot_id, where=where, **options)

    @property
    def levels(self) -> VersionLevels:
        """The levels of the pyramid at the branch tip: ``len(cube.levels)``,
        ``cube.levels[n]`` (lazy Datasets, 0 the finest); see :meth:`levels_at`."""
        return self.levels_at(None)

    @_translated
    def levels_at(self, /, version: VersionLike = None, **xarray_options: Any) -> VersionLevels:
        """The levels of the pyramid at ``version`` (CubeNotFoundError if it has none)."""
        resolved = self.resolve(version)
        options = {"chunks": {}, **xarray_options}
        where = self._where(version, resolved)
        check_version_authorised(self.repository, resolved.snapshot_id, where)
        return version_levels(self.repository, resolved.snapshot_id, where=where, **options)

    def _where(self, version: VersionLike, resolved: ResolvedVersion) -> str:
        """How messages name a version of the cube."""
        where = self.branch if version is None else f"version {resolved.text!r}"
        return f"{where} of {self.target.uri}"

    @_translated
    def resolve(self, version: VersionLike = None) -> ResolvedVersion:
        """The snapshot a version names (see :mod:`versioncube.versions.refs` for the forms)."""
        return resolve_version(self.repository, version, branch=self.branch)

    @_translated
    def appended_slices(self) -> Mapping[str, str]:
        """Slice identity -> snapshot id, for every slice since the cube was (last) created."""
        return self._appender.appended_slices()

    # -- versions ----------------------------------------------------------------------------

    @_translated
    def log(
        self,
        limit: int | None = None,
        *,
        version: VersionLike = None,
        since: str | dt.datetime | None = None,
        until: str | dt.datetime | None = None,
    ) -> Log:
        """The branch's commits (or those leading to ``version``), newest first: at most
        ``limit`` of them, written at or after ``since`` and at or before ``until`` (ISO 8601
        dates or date-times, or datetimes; naive ones are UTC). Reads the history only as far
        as the page reaches, so a page of a long history costs what the page holds."""
        page = LogPage(limit, moment(since, "since"), moment(until, "until"))
        snapshot_id = self.resolve(version).snapshot_id
        return branch_log(self.repository, snapshot_id, page, self.append_dim)

    @_translated
    def tag(self, name: str, *, at: VersionLike = None, message: str = "") -> tag_ops.TagInfo:
        """Name a version (default: the branch tip) as an immutable release."""
        snapshot_id = self.resolve(at).snapshot_id
        return tag_ops.create_tag(self.repository, self.target, name, snapshot_id, message)

    @_translated
    def tags(self) -> tag_ops.TagList:
        """All tags with their snapshots, times and messages, oldest first."""
        return tag_ops.list_tags(self.repository)

    @_translated
    def rollback(self, to: VersionLike) -> branch_ops.RollbackResult:
        """Move the branch to an earlier (or a discarded) version; nothing is deleted."""
        snapshot_id = self.resolve(to).snapshot_id
        result = branch_ops.rollback(
            self.repository, self.target, self.branch, snapshot_id, self.append_dim
        )
        self._appender.forget()
        return result

    @_translated
    def reflog(self, limit: int | None = None) -> Reflog:
        """Every change of the repository: commits, branch resets, tags, newest first."""
        return read_reflog(self.repository.ops_log(), limit)

    @_translated
    def diff(self, from_version: VersionLike, to_version: VersionLike = None) -> CubeDiff:
        """What changed from one version to another (default: to the branch tip)."""
        start, end = self.resolve(from_version), self.resolve(to_version)
        return diff_versions(
            self.repository, start.snapshot_id, end.snapshot_id, self.append_dim, self.target.uri
        )

    @_translated
    def diff_values(
        self,
        from_version: VersionLike,
        to_version: VersionLike = None,
        *,
        variable: str,
        label: Any,
    ) -> ValueDifference:
        """How ``variable`` differs at the append label ``label`` between two versions
        (default: to the branch tip): cells changed, the largest change, and ``.plot()``, a
        map of the difference."""
        start, end = self.resolve(from_version), self.resolve(to_version)
        return value_difference(
            self.repository,
            start.snapshot_id,
            end.snapshot_id,
            variable=variable,
            label=label,
            append_dim=self.append_dim,
            where=self.target.uri,
        )

    @_translated
    def history(
        self, step: str | float | None = None, *, version: VersionLike = None
    ) -> CubeHistory:
        """The branch's commits along the label axis (or those leading to ``version``), its
        tags and branch heads, and the gaps in its labels by ``step`` (``"1D"``, ``"1M"``,
        ...; default: the labels' most common spacing). ``.plot()`` draws it."""
        return cube_history(
            self.repository,
            self.resolve(version).snapshot_id,
            target=self.target.uri,
            branch=self.branch,
            append_dim=self.append_dim,
            step=step,
        )

    def plot_history(
        self, step: str | float | None = None, *, version: VersionLike = None, ax: Any = None
    ) -> Figure:
        """A picture of :meth:`history`: a bar per commit over the labels it wrote, coloured by
        operation, tags and branch heads marked, gaps shaded (a matplotlib Figure; needs
        ``pip install 'versioncube[plot]'``; ``ax`` draws into existing axes)."""
        figure: Figure = self.history(step, version=version).plot(ax=ax)
        return figure

    @_translated
    def coverage(self, step: str | float | None = None, *, version: VersionLike = None) -> Coverage:
        """Which steps between the first and last append label a version (default: the tip)
        holds and which are missing, by ``step`` (``"1D"``, ``"6h"``, ``"1M"`` months, ``"1Y"``
        years, ``"daily"``, a pandas frequency, or a number for numeric labels; default: the
        labels' most common spacing). A table of runs (``to_pandas()``) with ``.plot()``."""
        snapshot_id = self.resolve(version).snapshot_id
        labels = tip_labels(self.repository, snapshot_id, self.append_dim, self.target.uri)
        if labels is None:
            raise VersionError(
                f"{self.target.uri} has no {self.append_dim!r} label coordinate: coverage "
                "counts labels"
            )
        return label_coverage(labels, self.append_dim, snapshot_id, step)

    @_translated
    def info(self, version: VersionLike = None, *, storage: bool = False) -> CubeInfo:
        """Dims, variables, label range, sizes and refs of a version (default: the tip).

        ``storage`` also measures the bytes all versions store together (and the folder on
        local disk): that reads every version's manifests, so it takes longer the longer the
        history; the rest costs the same at any length.
        """
        snapshot_id = self.resolve(version).snapshot_id
        refs = ref_names(self.repository).get(snapshot_id, [])
        return describe_version(
            self.repository, self.target, snapshot_id, self.append_dim, refs, storage=storage
        )

    @_translated
    def branches(self) -> branch_ops.BranchList:
        """All branches with their tips, main first."""
        return branch_ops.list_branches(self.repository)

    @_translated
    def create_branch(self, name: str, *, at: VersionLike = None) -> branch_ops.BranchInfo:
        """Start a branch at a version (default: this branch's tip), e.g. to stage appends."""
        snapshot_id = self.resolve(at).snapshot_id
        return branch_ops.create_branch(self.repository, self.target, name, snapshot_id)

    @_translated
    def delete_branch(self, name: str) -> branch_ops.BranchDeleted:
        """Delete a branch (never main); the result names its last snapshot, to recreate it."""
        return branch_ops.delete_branch(self.repository, self.target, name)

    @_translated
    def promote(self, branch: str, *, into: str = "main") -> branch_ops.RollbackResult:
        """Fast-forward ``into`` to ``branch``'s tip; refused when ``into`` has moved on."""
        result = branch_ops.promote(self.repository, self.target, branch, into, self.append_dim)
        self._appender.forget()
        return result

    @_translated
    def gc(
        self, older_than: str | dt.timedelta, *, dry_run: bool = False, force: bool = False
    ) -> GcResult:
        """Expire snapshots older than ``older_than`` (e.g. "30d") and delete unreachable data."""
        duration = parse_duration(older_than)
        result = collect_garbage(
            self.repository, self.target, duration, dry_run=dry_run, force=force
        )
        self._appender.forget()
        return result

    @_translated
    def verify(self, version: VersionLike = None) -> VerifyReport:
        """Check a version (default: the tip) for damage; see :mod:`versioncube.versions.verify`."""
        snapshot_id = self.resolve(version).snapshot_id
        return verify_version(self.repository, snapshot_id, self.append_dim)

    @_translated
    def export(
        self,
        destination: str | os.PathLike[str],
        *,
        version: VersionLike = None,
        zarr_format: ZarrFormat = 3,
        consolidated: bool = False,
        overwrite: bool = False,
        storage_options: Mapping[str, Any] | None = None,
    ) -> ExportResult:
        """Write a version (default: the tip) as a plain Zarr v2 or v3 store at ``destination``
        (a path or fsspec URL), for readers that cannot open Icechunk; see
        :mod:`versioncube.versions.export`."""
        resolved = self.resolve(version)
        return export_version(
            self.repository,
            resolved.snapshot_id,
            os.fspath(destination),
            version=resolved.text,
            append_dim=self.append_dim,
            where=f"version {resolved.text!r} of {self.target.uri}",
            zarr_format=zarr_format,
            consolidated=consolidated,
            overwrite=overwrite,
            storage_options=storage_options,
        )

    # -- writing -----------------------------------------------------------------------------

    @_translated
    def append(
        self,
        item: SliceLike,
        *,
        dry_run: bool = False,
        engine: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        options: CommitOptions | None = None,
        virtual: bool | None = None,
    ) -> AppendResult:
        """Append one slice as one commit (see :mod:`versioncube.write.append` for the steps).

        ``options`` sets the commit message, extra commit metadata and the retry policy;
        ``virtual`` (default: the ``virtual`` setting) appends a file as references to its
        chunks instead of a copy (see :mod:`versioncube.write.virtual`).
        """
        with self._appender.on_cluster():
            return append_item(
                self._appender,
                item,
                virtual=virtual,
                dry_run=dry_run,
                engine=engine,
                storage_options=storage_options,
                options=options,
            )

    @_translated
    def write(
        self,
        item: SliceLike,
        *,
        mode: str | None = None,
        engine: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        options: CommitOptions | None = None,
    ) -> WriteResult | AppendResult:
        """Write one slice by its append labels as one commit (see :mod:`versioncube.write.
        updates`): ``mode`` (default: the ``write_mode`` setting) is ``"upsert"`` (overwrite
        the labels the cube has, insert the others in order), ``"time_series"`` (replace the
        window [first, last] of the slice's labels), ``"replace"`` (existing labels only, no
        row moves), ``"insert"`` (new labels only) or ``"append"`` (:meth:`append`). Writing
        a slice the cube holds with the same content is a no-op (``status == "skipped"``)."""
        mode = mode or self.config.write_mode
        if mode == "append":
            return self.append(
                item, engine=engine, storage_options=storage_options, options=options
            )
        return write_item(
            self._appender,
            item,
            mode,
            engine=engine,
            storage_options=storage_options,
            options=options,
        )

    @_translated
    def delete(
        self, labels: str | tuple[Any, Any], *, options: CommitOptions | None = None
    ) -> WriteResult:
        """Remove every append label within a range in one commit: ``"A..B"`` (inclusive),
        one label ``"A"``, or a pair ``(first, last)``. A range holding no label commits
        nothing (``status == "nothing to delete"``)."""
        return delete_labels(self._appender, labels, options)

    @_translated
    def materialize(
        self, start: Any = None, stop: Any = None, *, options: CommitOptions | None = None
    ) -> MaterializeResult:
        """Copy the referenced (virtual) chunks of the branch tip, or of the append labels
        ``start`` .. ``stop`` (inclusive), into the repository in one commit, so that those
        rows no longer depend on the archive files (see :mod:`versioncube.write.materialize`).
        """
        result = materialize(self.store, self.append_dim, start, stop, options)
        self._appender.forget()
        return result

    @_translated
    def add_variable(
        self,
        name: str,
        data_or_slices: VariableData,
        *,
        fill_value: Any = None,
        group: str | None = None,
        options: CommitOptions | None = None,
    ) -> SchemaChangeResult:
        """Add variable ``name`` over every row of the cube in one commit: the steps the data
        gives (by append label; a DataArray, a Dataset, or slices holding the variable) get its
        values, every other row ``fill_value`` (default NaN), stored as the variable's
        ``_FillValue`` so that readers see those rows as missing; a variable without the append
        dimension is written whole. Checked and encoded as an append's slice (the
        configuration's ``variables.NAME`` applies); see :mod:`versioncube.write.schema`.
        On a pyramid every level gets it (downsampled as appends do); on a tree, the node
        ``group`` (a path such as ``"/ocean"``, default the root)."""
        outline = self._outline_with(name)
        result = add_variable(
            self.store,
            outline.append_dim,
            name,
            data_or_slices,
            outline=outline,
            fill_value=fill_value,
            group=group,
            slice_options=self._appender.slice_options,
            options=options,
        )
        self._appender.forget()
        return result

    def _outline_with(self, name: str) -> ResolvedOutline:
        """The cube's outline with the configuration's settings of a new variable, which the
        outline the cube was created with (and keeps) does not have."""
        settings = self.config.variables.get(name)
        if settings is None:
            return self.outline
        others = {key: value for key, value in self.config.variables.items() if key != name}
        config = dataclasses.replace(self.config, variables=others)
        outline = GroupedAppender(self.store, config).outline
        return dataclasses.replace(outline, variables={**outline.variables, name: settings})

    @_translated
    def drop_variable(
        self, name: str, *, group: str | None = None, options: CommitOptions | None = None
    ) -> SchemaChangeResult:
        """Remove variable ``name`` from the cube in one commit (earlier versions keep it); the
        append coordinate and coordinates other variables need are refused. On a pyramid it
        leaves every level; on a tree, the node ``group`` (default the root)."""
        dim = self._outline_with(name).append_dim
        result = drop_variable(self.store, dim, name, group=group, options=options)
        self._appender.forget()
        return result

    def append_all(
        self,
        slices: Iterable[SliceLike] | SliceLike,
        *,
        dry_run: bool | None = None,
        on_result: Callable[[AppendResult], None] | None = None,
        options: CommitOptions | None = None,
        announce: Callable[[str], None] | None = None,
        on_chunks: Callable[[int, int], None] | None = None,
    ) -> RunSummary:
        """Append each slice in order, one commit each, with the run's logging and profiling
        settings; a failing slice's error carries the summary so far (``error.summary``).
        ``options`` (message, metadata, retry policy) applies to every commit of the run. On
        a dask cluster (docs/distributed.md) ``on_chunks(done, total)`` reports the chunks of
        a big slice the workers have written, and ``announce`` gets a line naming a cluster
        started for the run (its dashboard)."""
        return append_slices(
            self._appender,
            slices,
            dry_run=self.config.dry_run if dry_run is None else dry_run,
            logging_setting=self.config.logging,
            profiling_setting=self.config.profiling,
            on_result=on_result,
            options=options,
            announce=announce,
            on_chunks=on_chunks,
        )


def open_cube(
    target: TargetLike | Target,
    branch: str = "main",
    storage_options: Mapping[str, Any] | None = None,
    *,
    append_dim: str | None = None,
    config: ConfigLike | Config = None,
    virtual_credentials: Mapping[str, Any] | None = None,
) -> Cube:
    """A Cube for the target and branch (reads nothing until used).

    ``config`` (a Config, dict, file or list of them) gives the outline and slice settings for
    appends made through the Cube. ``virtual_credentials`` authorise reading the files a cube
    of virtual slices references, by container prefix (see docs/virtual.md): ``"local"``,
    ``"env"``, ``"anonymous"`` or S3 keys ``{"access_key_id": ..., "secret_access_key": ...}``.
    """
    if not isinstance(target, Target):
        target = parse_target(target, storage_options)
    if not isinstance(config, Config):
        config = load_config(config)
    if virtual_credentials:
        merged = {**config.virtual_credentials, **virtual_credentials}
        config = dataclasses.replace(config, virtual_credentials=merged)
    return Cube(target, branch, append_dim=append_dim, config=config)


def cube_from_config(config: Config) -> Cube:
    """The cube a configuration names (target_dir, its storage options, branch, settings)."""
    if not config.target_dir:
        raise ConfigError("no target given: set target_dir (the cube's path or URI)")
    return open_cube(
        config.target_dir, config.target_branch, config.target_storage_options, config=config
    )
