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
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate

from versioncube.config import Config, ConfigLike, load_config
from versioncube.config.outline import TargetOutline
from versioncube.display import html
from versioncube.display.json import JsonValue
from versioncube.errors import ConfigError, CubeNotFoundError
from versioncube.slices.identity import SliceLike
from versioncube.store.commit import CommitOptions, RetryPolicy
from versioncube.store.dataset import NO_DATA, open_version
from versioncube.store.repository import CubeStore
from versioncube.store.target import Target, TargetLike, parse_target
from versioncube.store.translate import translated
from versioncube.versions import branches as branch_ops
from versioncube.versions import tags as tag_ops
from versioncube.versions.diff import CubeDiff, diff_versions
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
from versioncube.write.append import Appender, AppendResult
from versioncube.write.run import RunSummary, append_slices

if TYPE_CHECKING:
    import icechunk
    import xarray as xr


def _translated[**P, R](
    method: Callable[Concatenate[Cube, P], R],
) -> Callable[Concatenate[Cube, P], R]:
    """Run a Cube method with foreign errors translated (naming the cube's target)."""

    @functools.wraps(method)
    def wrapper(self: Cube, *args: P.args, **kwargs: P.kwargs) -> R:
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
        self.store = CubeStore(target, branch)
        self._appender = Appender(self.store, config)

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
        return html.text_block("Cube", self.describe())

    # -- reading -----------------------------------------------------------------------------

    @property
    def repository(self) -> icechunk.Repository:
        """The Icechunk repository (raises CubeNotFoundError when there is none yet)."""
        return self.store.repository

    def exists(self) -> bool:
        """Whether the target holds a repository with this branch."""
        return self.store.exists()

    @property
    def outline(self) -> TargetOutline:
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
        return self.outline.append_dim  # type: ignore[return-value]

    @_translated
    def to_xarray(self, version: VersionLike = None, **xarray_options: Any) -> xr.Dataset:
        """The cube as it is at the branch tip, or as it was at ``version``, lazily (dask).

        ``version``: a tag, branch, ``BRANCH~N``/``~N``, snapshot id (or a unique prefix), or
        an ISO 8601 date-time / ``datetime`` meaning "as of" (see :mod:`versioncube.versions.
        refs`). ``xarray_options`` go to ``xarray.open_dataset`` (``chunks={}`` by default).
        """
        resolved = self.resolve(version)
        where = self.branch if version is None else f"version {resolved.text!r}"
        where = f"{where} of {self.target.uri}"
        options = {"chunks": {}, **xarray_options}
        dataset = open_version(self.repository, resolved.snapshot_id, where=where, **options)
        if not dataset.variables:
            raise CubeNotFoundError(f"{where} {NO_DATA}")
        return dataset

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
    ) -> AppendResult:
        """Append one slice as one commit (see :mod:`versioncube.write.append` for the steps).

        ``options`` sets the commit message, extra commit metadata and the retry policy.
        """
        return self._appender.append(
            item, dry_run=dry_run, engine=engine, storage_options=storage_options, options=options
        )

    def append_all(
        self,
        slices: Iterable[SliceLike] | SliceLike,
        *,
        dry_run: bool | None = None,
        on_result: Callable[[AppendResult], None] | None = None,
        options: CommitOptions | None = None,
    ) -> RunSummary:
        """Append each slice in order, one commit each, with the run's logging and profiling
        settings; a failing slice's error carries the summary so far (``error.summary``).
        ``options`` (message, metadata, retry policy) applies to every commit of the run."""
        return append_slices(
            self._appender,
            slices,
            dry_run=self.config.dry_run if dry_run is None else dry_run,
            logging_setting=self.config.logging,
            profiling_setting=self.config.profiling,
            on_result=on_result,
            options=options,
        )


def open_cube(
    target: TargetLike | Target,
    branch: str = "main",
    storage_options: Mapping[str, Any] | None = None,
    *,
    append_dim: str | None = None,
    config: ConfigLike | Config = None,
) -> Cube:
    """A Cube for the target and branch (reads nothing until used).

    ``config`` (a Config, dict, file or list of them) gives the outline and slice settings for
    appends made through the Cube.
    """
    if not isinstance(target, Target):
        target = parse_target(target, storage_options)
    if not isinstance(config, Config):
        config = load_config(config)
    return Cube(target, branch, append_dim=append_dim, config=config)


def cube_from_config(config: Config) -> Cube:
    """The cube a configuration names (target_dir, its storage options, branch, settings)."""
    if not config.target_dir:
        raise ConfigError("no target given: set target_dir in the configuration or use -t/--target")
    return open_cube(
        config.target_dir, config.target_branch, config.target_storage_options, config=config
    )
