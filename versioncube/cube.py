"""A cube is an Icechunk repository plus a branch; appending a slice is one commit on it.

:meth:`Cube.append` is the pipeline every append follows, from the API and the CLI alike:

1. name the slice (its identity) and skip it when the branch's history already holds it;
2. open the slice;
3. in one writable session on the branch tip: read the cube's outline, check the slice against
   it, write the slice along the append dimension;
4. commit once, with the commit record as metadata.

Any error before step 4 leaves the branch tip exactly where it was.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import icechunk
import xarray as xr
from icechunk.xarray import to_icechunk

from versioncube import versions
from versioncube.config import Config
from versioncube.diff import CubeDiff, diff_versions
from versioncube.encoding import creation_encoding
from versioncube.errors import ConfigError, CubeNotFoundError, storage_errors
from versioncube.history import CommitRecord, Log, Reflog, SliceHistory, read_reflog
from versioncube.refs import ResolvedVersion, VersionLike, resolve_version
from versioncube.retention import GcResult, collect_garbage, parse_duration
from versioncube.schema import AppendPlan, CubeOutline, plan_append, plan_first_slice
from versioncube.slices import SliceLike, SliceRef, open_slice, slice_ref
from versioncube.storage import (
    Target,
    TargetLike,
    open_repository,
    parse_target,
    repository_config,
)
from versioncube.summary import CubeInfo, describe_version
from versioncube.transaction import (
    DEFAULT_RETRY,
    AlreadyCommitted,
    RetryPolicy,
    commit_change,
    open_or_create_repository,
)
from versioncube.verify import VerifyReport, verify_version

DEFAULT_APPEND_DIM = "time"
REPO_METADATA_KEY = "versioncube"

AppendStatus = Literal["appended", "skipped", "would append"]


@dataclasses.dataclass(frozen=True)
class AppendResult:
    """What happened to one slice."""

    slice_name: str
    identity: str
    status: AppendStatus
    snapshot_id: str | None  # the new commit, or the earlier one that holds a skipped slice
    record: CommitRecord | None  # the commit record (None for a skipped slice)

    def describe(self) -> str:
        """One line for people, e.g. ``appended 2024-03-01.nc: time 2024-03-01 (snapshot X)``."""
        if self.status == "skipped":
            return f"skipped {self.slice_name}: already in the cube (snapshot {self.snapshot_id})"
        assert self.record is not None
        text = f"{self.status} {self.slice_name}: {self.record.extent()}"
        if self.record.operation == "create":
            text += ", creating the cube"
        return text + (f" (snapshot {self.snapshot_id})" if self.snapshot_id else "")


@dataclasses.dataclass
class RunSummary:
    """The results of appending a list of slices."""

    results: list[AppendResult] = dataclasses.field(default_factory=list)
    elapsed: float = 0.0
    dry_run: bool = False

    @property
    def appended(self) -> int:
        return sum(result.status != "skipped" for result in self.results)

    @property
    def skipped(self) -> int:
        return sum(result.status == "skipped" for result in self.results)

    def __str__(self) -> str:
        verb = "would append" if self.dry_run else "appended"
        return (
            f"{verb} {_count(self.appended, 'slice')}, skipped {self.skipped} "
            f"(already in the cube), {self.elapsed:.1f} s"
        )


class Cube:
    """A datacube at a target (an Icechunk repository) on one branch.

    Creating a Cube reads nothing; the repository is opened on first use and created by the
    first append.
    """

    def __init__(
        self,
        target: Target,
        branch: str = "main",
        *,
        append_dim: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ):
        self.target = target
        self.branch = branch
        self.retry = retry
        self._configured_append_dim = append_dim
        self._repo: icechunk.Repository | None = None
        self._history = SliceHistory()
        self._dry_run_outline: CubeOutline | None = None
        self._settings: Mapping[str, Any] | None = None  # stored with the cube at creation

    def __repr__(self) -> str:
        return f"Cube({self.target.uri!r}, branch={self.branch!r})"

    # -- reading -----------------------------------------------------------------------------

    @property
    def repository(self) -> icechunk.Repository:
        """The Icechunk repository (raises CubeNotFoundError when there is none yet)."""
        if self._repo is None:
            repo = open_repository(self.target)
            self._check_branch(repo)
            self._repo = repo
        return self._repo

    def exists(self) -> bool:
        """Whether the target holds a repository with this branch."""
        try:
            _ = self.repository
        except CubeNotFoundError:
            return False
        return True

    @property
    def append_dim(self) -> str:
        """The cube's append dimension: the one it was created with, else the configured one."""
        stored = self._stored_settings().get("append_dim")
        configured = self._configured_append_dim
        if stored and configured and stored != configured:
            raise ConfigError(
                f"append_dim is {configured!r}, but the cube at {self.target.uri} was created "
                f"with append_dim {stored!r}"
            )
        return stored or configured or DEFAULT_APPEND_DIM

    def to_xarray(self, version: VersionLike = None) -> xr.Dataset:
        """The cube as it is at the branch tip, or as it was at ``version``, lazily (dask).

        ``version``: a tag, branch, ``BRANCH~N``/``~N``, snapshot id (or a unique prefix), or
        an ISO 8601 date-time / ``datetime`` meaning "as of" (see :mod:`versioncube.refs`).
        """
        resolved = self.resolve(version)
        session = self.repository.readonly_session(snapshot_id=resolved.snapshot_id)
        with storage_errors(self.target.uri):
            dataset = _open_head(session.store, chunks={})
        if dataset is None or not dataset.variables:
            where = self.branch if version is None else f"version {resolved.text!r}"
            raise CubeNotFoundError(f"{where} of {self.target.uri} holds no cube yet")
        return dataset

    def resolve(self, version: VersionLike = None) -> ResolvedVersion:
        """The snapshot a version names (see :mod:`versioncube.refs` for the accepted forms)."""
        with storage_errors(self.target.uri):
            return resolve_version(self.repository, version, branch=self.branch)

    def appended_slices(self) -> Mapping[str, str]:
        """Slice identity -> snapshot id, for every slice in the branch's history."""
        if self.exists():
            with storage_errors(self.target.uri):
                tip = self.repository.lookup_branch(self.branch)
                self._history.catch_up(self.repository, tip)
        return self._history.as_mapping()

    # -- versions ----------------------------------------------------------------------------

    def log(self, limit: int | None = None, *, version: VersionLike = None) -> Log:
        """The branch's commits (or those leading to ``version``), newest first."""
        snapshot_id = self.resolve(version).snapshot_id
        with storage_errors(self.target.uri):
            return versions.branch_log(self.repository, snapshot_id, limit)

    def tag(self, name: str, *, at: VersionLike = None, message: str = "") -> versions.TagInfo:
        """Name a version (default: the branch tip) as an immutable release."""
        snapshot_id = self.resolve(at).snapshot_id
        return versions.create_tag(self.repository, self.target, name, snapshot_id, message)

    def tags(self) -> versions.TagList:
        """All tags with their snapshots, times and messages, oldest first."""
        with storage_errors(self.target.uri):
            return versions.list_tags(self.repository)

    def rollback(self, to: VersionLike) -> versions.RollbackResult:
        """Move the branch to an earlier (or a discarded) version; nothing is deleted."""
        snapshot_id = self.resolve(to).snapshot_id
        result = versions.rollback(self.repository, self.target, self.branch, snapshot_id)
        self._forget_state()
        return result

    def reflog(self) -> Reflog:
        """Every change of the repository: commits, branch resets, tags, newest first."""
        with storage_errors(self.target.uri):
            return read_reflog(self.repository.ops_log())

    def diff(self, from_version: VersionLike, to_version: VersionLike = None) -> CubeDiff:
        """What changed from one version to another (default: to the branch tip)."""
        start, end = self.resolve(from_version), self.resolve(to_version)
        with storage_errors(self.target.uri):
            return diff_versions(
                self.repository, start.snapshot_id, end.snapshot_id, self.append_dim
            )

    def info(self, version: VersionLike = None) -> CubeInfo:
        """Dims, variables, label range, sizes and refs of a version (default: the tip)."""
        snapshot_id = self.resolve(version).snapshot_id
        with storage_errors(self.target.uri):
            refs = versions.ref_names(self.repository).get(snapshot_id, [])
            return describe_version(
                self.repository, self.target, snapshot_id, self.append_dim, refs
            )

    def branches(self) -> versions.BranchList:
        """All branches with their tips, main first."""
        with storage_errors(self.target.uri):
            return versions.list_branches(self.repository)

    def create_branch(self, name: str, *, at: VersionLike = None) -> versions.BranchInfo:
        """Start a branch at a version (default: this branch's tip), e.g. to stage appends."""
        snapshot_id = self.resolve(at).snapshot_id
        return versions.create_branch(self.repository, self.target, name, snapshot_id)

    def delete_branch(self, name: str) -> str:
        """Delete a branch (never main); returns its last snapshot id, to recreate it."""
        return versions.delete_branch(self.repository, self.target, name)

    def promote(self, branch: str, *, into: str = "main") -> versions.RollbackResult:
        """Fast-forward ``into`` to ``branch``'s tip; refused when ``into`` has moved on."""
        result = versions.promote(self.repository, self.target, branch, into)
        self._forget_state()
        return result

    def gc(
        self, older_than: str | dt.timedelta, *, dry_run: bool = False, force: bool = False
    ) -> GcResult:
        """Expire snapshots older than ``older_than`` (e.g. "30d") and delete unreachable data."""
        result = collect_garbage(
            self.repository, self.target, parse_duration(older_than), dry_run=dry_run, force=force
        )
        self._forget_state()
        return result

    def verify(self, version: VersionLike = None) -> VerifyReport:
        """Check a version (default: the tip) for damage; see :mod:`versioncube.verify`."""
        snapshot_id = self.resolve(version).snapshot_id
        with storage_errors(self.target.uri):
            return verify_version(self.repository, snapshot_id, self.append_dim)

    def _forget_state(self) -> None:
        """Drop what was simulated from the branch; a ref change makes it stale."""
        self._dry_run_outline = None

    # -- appending ---------------------------------------------------------------------------

    def append(
        self,
        item: SliceLike,
        *,
        dry_run: bool = False,
        engine: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> AppendResult:
        """Append one slice as one commit (see the module docstring for the steps)."""
        ref = slice_ref(item)
        done = self.appended_slices().get(ref.identity)
        if done is not None:
            return AppendResult(ref.name, ref.identity, "skipped", done, None)
        with open_slice(ref, engine=engine, storage_options=storage_options) as dataset:
            if dry_run:
                return self._dry_run(ref, dataset)
            if self.exists():
                repo = self.repository
            else:
                plan_first_slice(dataset, self.append_dim, ref.name)  # refuse before creating
                repo = self._create()
            outcome = commit_change(
                repo,
                self.target,
                self.branch,
                lambda session: self._write(session, ref, dataset),
                self.retry,
            )
        if outcome.record is None:  # another writer appended this very slice first
            return AppendResult(ref.name, ref.identity, "skipped", outcome.snapshot_id, None)
        self._history.committed(ref.identity, outcome.snapshot_id)
        return AppendResult(ref.name, ref.identity, "appended", outcome.snapshot_id, outcome.record)

    def _write(
        self, session: icechunk.Session, ref: SliceRef, dataset: xr.Dataset
    ) -> CommitRecord | AlreadyCommitted:
        """Validate against and write into ``session``, a fresh session on the branch tip."""
        self._history.catch_up(self.repository, session.snapshot_id)
        done = self._history.get(ref.identity)
        if done is not None:
            return AlreadyCommitted(done)
        dim = self.append_dim
        outline = read_outline(session.store, dim)
        plan = _plan(outline, dataset, ref, dim)
        if plan.creates_cube:
            to_icechunk(_with_creation_encoding(plan.dataset, dim), session, mode="w-")
        else:
            to_icechunk(plan.dataset, session, append_dim=dim)
        return CommitRecord.for_plan(plan, ref.identity, dim)

    def _dry_run(self, ref: SliceRef, dataset: xr.Dataset) -> AppendResult:
        dim = self.append_dim
        if self._dry_run_outline is None and self.exists():
            session = self.repository.readonly_session(branch=self.branch)
            with storage_errors(self.target.uri):
                self._dry_run_outline = read_outline(session.store, dim)
        plan = _plan(self._dry_run_outline, dataset, ref, dim)
        if plan.creates_cube:
            self._dry_run_outline = CubeOutline.of_dataset(dataset, dim)
        else:
            self._dry_run_outline = self._dry_run_outline.extended(plan)  # type: ignore[union-attr]
        record = CommitRecord.for_plan(plan, ref.identity, dim)
        return AppendResult(ref.name, ref.identity, "would append", None, record)

    def _create(self) -> icechunk.Repository:
        dim = self.append_dim
        settings = {"schema": 1, "append_dim": dim}

        def initialise(repo: icechunk.Repository) -> None:
            repo.set_metadata({REPO_METADATA_KEY: settings})
            if self.branch != "main":
                repo.create_branch(self.branch, repo.lookup_branch("main"))

        self._repo = open_or_create_repository(self.target, repository_config(dim), initialise)
        self._check_branch(self._repo)
        return self._repo

    def _stored_settings(self) -> Mapping[str, Any]:
        if self._settings is None:
            if not self.exists():
                return {}
            with storage_errors(self.target.uri):
                settings = self.repository.get_metadata().get(REPO_METADATA_KEY)
            if not isinstance(settings, Mapping):
                return {}  # not (yet) written: look again next time
            self._settings = settings
        return self._settings

    def _check_branch(self, repo: icechunk.Repository) -> None:
        with storage_errors(self.target.uri):
            branches = repo.list_branches()
        if self.branch not in branches:
            raise CubeNotFoundError(
                f"no branch {self.branch!r} in {self.target.uri} "
                f"(branches: {', '.join(sorted(branches))})"
            )


def read_outline(store: Any, append_dim: str) -> CubeOutline | None:
    """The outline of the cube in ``store`` (a session's store), or None if it holds none yet."""
    dataset = _open_head(store, chunks=None, create_default_indexes=False)
    if dataset is None:
        return None
    if append_dim not in dataset.dims:
        if dataset.variables:
            raise ConfigError(
                f"the cube has no dimension {append_dim!r} to append along "
                f"(its dimensions: {', '.join(map(str, dataset.dims))})"
            )
        return None
    return CubeOutline.of_dataset(dataset, append_dim)


def _open_head(store: Any, **options: Any) -> xr.Dataset | None:
    """Open the dataset in a session's store lazily, or None when no commit has written one."""
    import zarr.errors

    try:
        return xr.open_dataset(store, engine="zarr", consolidated=False, **options)
    except zarr.errors.GroupNotFoundError:
        return None


def _plan(outline: CubeOutline | None, dataset: xr.Dataset, ref: SliceRef, dim: str) -> AppendPlan:
    if outline is None:
        return plan_first_slice(dataset, dim, ref.name)
    return plan_append(outline, dataset, ref.name)


def _with_creation_encoding(dataset: xr.Dataset, append_dim: str) -> xr.Dataset:
    dataset = dataset.copy(deep=False)
    for name, update in creation_encoding(dataset, append_dim).items():
        variable = dataset.variables[name]
        variable.encoding = {**variable.encoding, **update}
    return dataset


def open_cube(
    target: TargetLike | Target,
    branch: str = "main",
    storage_options: Mapping[str, Any] | None = None,
    *,
    append_dim: str | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> Cube:
    """A Cube for the target and branch (reads nothing until used)."""
    if not isinstance(target, Target):
        target = parse_target(target, storage_options)
    return Cube(target, branch, append_dim=append_dim, retry=retry)


def cube_from_config(config: Config) -> Cube:
    """The cube a configuration names (target_dir, its storage options, branch, append_dim)."""
    if not config.target_dir:
        raise ConfigError("no target given: set target_dir in the configuration or use -t/--target")
    return open_cube(
        config.target_dir,
        config.target_branch,
        config.target_storage_options,
        append_dim=config.append_dim,
        retry=RetryPolicy(on_conflict=config.on_conflict, max_retries=config.max_retries),
    )


def append_slices(
    slices: Iterable[SliceLike],
    config: Config,
    *,
    on_result: Callable[[AppendResult], None] | None = None,
) -> RunSummary:
    """Append each slice in order, one commit each; the core of ``append`` and the CLI."""
    cube = cube_from_config(config)
    summary = RunSummary(dry_run=config.dry_run)
    started = time.perf_counter()
    if isinstance(slices, str | xr.Dataset):
        slices = [slices]
    try:
        for item in slices:
            result = cube.append(
                item,
                dry_run=config.dry_run,
                engine=config.slice_engine,
                storage_options=config.slice_storage_options,
            )
            summary.results.append(result)
            if on_result is not None:
                on_result(result)
    finally:
        summary.elapsed = time.perf_counter() - started
    return summary


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
