"""A cube is an Icechunk repository plus a branch; appending a slice is one commit on it.

:meth:`Cube.append` is the pipeline every append follows, from the API and the CLI alike:

1. name the slice (its identity) and skip it when the branch's history already holds it;
2. open the slice (from its file, URI, dataset or configured slice source);
3. in one writable session on the branch tip: read the cube's outline, tailor the slice to the
   target outline (variables, dims, configured variables it lacks), check it against the cube,
   write it along the append dimension (a first slice with the configured encodings), and set
   the global attributes (``attrs_update_mode``, ``attrs``, evaluated ``{{ }}`` values);
4. commit once, with the commit record as metadata.

Any error before step 4 leaves the branch tip exactly where it was. The target outline is
stored in the repository's metadata when the cube is created (see :mod:`versioncube.outline`);
``force_new`` starts the cube afresh with the first slice of a run, as a new commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import icechunk
import xarray as xr
from icechunk.xarray import to_icechunk

from versioncube import versions
from versioncube.attrs import evaluate_attrs, has_expressions, merged_attrs
from versioncube.config import Config, ConfigLike, load_config
from versioncube.diff import CubeDiff, diff_versions
from versioncube.encoding import creation_encoding
from versioncube.errors import ConfigError, CubeNotFoundError, storage_errors
from versioncube.history import CommitRecord, Log, Reflog, SliceHistory, read_reflog
from versioncube.outline import TargetOutline
from versioncube.profiling import profiled
from versioncube.refs import ResolvedVersion, VersionLike, resolve_version
from versioncube.retention import GcResult, collect_garbage, parse_duration
from versioncube.run_logging import logging_for_run
from versioncube.schema import AppendPlan, CubeOutline, plan_append, plan_first_slice
from versioncube.slice_sources import SliceSource
from versioncube.slices import SliceLike, SliceOptions, SliceRef, open_slice, slice_ref
from versioncube.storage import (
    Target,
    TargetLike,
    open_repository,
    parse_target,
    repository_config,
)
from versioncube.summary import CubeInfo, describe_version
from versioncube.tailoring import tailor_slice
from versioncube.transaction import (
    AlreadyCommitted,
    RetryPolicy,
    commit_change,
    open_or_create_repository,
    update_repository,
)
from versioncube.verify import VerifyReport, verify_version
from versioncube.zarr_append import append_in_place, can_append_in_place

DEFAULT_APPEND_DIM = "time"
REPO_METADATA_KEY = "versioncube"

AppendStatus = Literal["appended", "skipped", "would append"]

logger = logging.getLogger(__name__)


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
    first append. ``config`` gives the run's settings (target outline, slice options,
    ``force_new``); the target and branch given here win over its ``target_*`` keys.
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
        self.target = target
        self.branch = branch
        self.retry = RetryPolicy(on_conflict=config.on_conflict, max_retries=config.max_retries)
        self._configured = TargetOutline.from_config(config)
        self._slice_options = SliceOptions.from_config(config)
        self._start_afresh = config.force_new  # the next append starts the cube anew
        self._repo: icechunk.Repository | None = None
        self._history = SliceHistory()
        self._dry_run_outline: CubeOutline | None = None
        # the cube's outline at our own last commit, so the next append need not read it again
        self._outline_at: tuple[str, CubeOutline] | None = None
        self._pending_outline: CubeOutline | None = None  # what this append's commit will leave
        self._stored: Mapping[str, Any] | None = None  # the repository's versioncube metadata

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
    def outline(self) -> TargetOutline:
        """The target outline: the one stored with the cube, else the configured one.

        A configured setting that contradicts the stored outline raises ConfigError.
        """
        outline = self._configured
        if not self._start_afresh and self.exists():
            outline = outline.reconciled(self._stored_settings(), self.target.uri)
        return dataclasses.replace(outline, append_dim=outline.append_dim or DEFAULT_APPEND_DIM)

    @property
    def append_dim(self) -> str:
        """The cube's append dimension: the one it was created with, else the configured one."""
        return self.outline.append_dim  # type: ignore[return-value]

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
        """Slice identity -> snapshot id, for every slice since the cube was (last) created."""
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
        options = self._slice_options.overridden(engine=engine, storage_options=storage_options)
        ref = slice_ref(item, options)
        if (done := self._commit_holding(ref)) is not None:
            return AppendResult(ref.name, ref.identity, "skipped", done, None)
        with open_slice(ref, options) as dataset:
            ref = ref.identified(dataset)
            if (done := self._commit_holding(ref)) is not None:
                return AppendResult(ref.name, ref.identity, "skipped", done, None)
            if dry_run:
                return self._dry_run(ref, dataset)
            afresh, outline = self._start_afresh, self.outline
            if afresh or not self.exists():
                _first_slice_plan(dataset, ref, outline)  # refuse before creating anything
            repo = self.repository if self.exists() else self._create(outline)
            outcome = commit_change(
                repo,
                self.target,
                self.branch,
                lambda session: self._write(session, ref, dataset, outline, afresh),
                self.retry,
            )
        if outcome.record is None:  # another writer appended this very slice first
            return AppendResult(ref.name, ref.identity, "skipped", outcome.snapshot_id, None)
        if afresh:
            self._restarted(outline)
        self._history.committed(ref.identity, outcome.snapshot_id, outcome.record)
        self._outline_at = None
        if self._pending_outline is not None:
            self._outline_at = (outcome.snapshot_id, self._pending_outline)
        return AppendResult(ref.name, ref.identity, "appended", outcome.snapshot_id, outcome.record)

    def _commit_holding(self, ref: SliceRef) -> str | None:
        """The commit that already holds this slice, or None (always None when starting anew)."""
        if ref.identity is None or self._start_afresh:
            return None
        return self.appended_slices().get(ref.identity)

    def _write(
        self,
        session: icechunk.Session,
        ref: SliceRef,
        dataset: xr.Dataset,
        outline: TargetOutline,
        afresh: bool,
    ) -> CommitRecord | AlreadyCommitted:
        """Validate against and write into ``session``, a fresh session on the branch tip."""
        if not afresh:
            self._history.catch_up(self.repository, session.snapshot_id)
            done = self._history.get(ref.identity) if ref.identity else None
            if done is not None:
                return AlreadyCommitted(done)
        dim = outline.append_dim
        cube = None if afresh else self._outline_of(session)
        plan = _plan(cube, dataset, ref, outline)
        attrs = merged_attrs(
            outline.attrs_update_mode,
            cube.attrs if cube is not None else None,
            plan.dataset.attrs,
            outline.attrs,
        )
        evaluated = outline.permit_eval and has_expressions(outline.attrs)
        self._pending_outline = None
        if plan.creates_cube:
            to_write = _with_creation_encoding(plan.dataset.copy(deep=False), outline)
            to_write.attrs = attrs
            to_icechunk(to_write, session, mode="w" if afresh else "w-", align_chunks=True)
        elif can_append_in_place(plan.dataset):
            append_in_place(session.store, plan.dataset, cube, attrs)  # type: ignore[arg-type]
            if not evaluated:
                self._pending_outline = cube.extended(plan, attrs)  # type: ignore[union-attr]
        else:
            # dask-backed: written chunk by chunk, rechunked to the cube's chunks as zappend does
            to_write = plan.dataset.copy(deep=False)
            to_write.attrs = attrs
            to_icechunk(to_write, session, append_dim=dim, align_chunks=True)
        if evaluated:
            _write_evaluated_attrs(session, outline.attrs)
        return CommitRecord.for_plan(plan, ref.identity, dim)

    def _outline_of(self, session: icechunk.Session) -> CubeOutline | None:
        """The cube's outline in ``session``: kept from our last commit when that is its base."""
        if self._outline_at is not None and self._outline_at[0] == session.snapshot_id:
            return self._outline_at[1]
        return read_outline(session.store, self.outline.append_dim)

    def _dry_run(self, ref: SliceRef, dataset: xr.Dataset) -> AppendResult:
        outline = self.outline
        dim = outline.append_dim
        if self._dry_run_outline is None and self.exists() and not self._start_afresh:
            session = self.repository.readonly_session(branch=self.branch)
            with storage_errors(self.target.uri):
                self._dry_run_outline = read_outline(session.store, dim)
        if self._dry_run_outline is None:
            plan = _first_slice_plan(dataset, ref, outline)
            self._dry_run_outline = CubeOutline.of_dataset(plan.dataset, dim)
        else:
            plan = _plan(self._dry_run_outline, dataset, ref, outline)
            self._dry_run_outline = self._dry_run_outline.extended(plan)
        record = CommitRecord.for_plan(plan, ref.identity, dim)
        return AppendResult(ref.name, ref.identity, "would append", None, record)

    def _create(self, outline: TargetOutline) -> icechunk.Repository:
        def initialise(repo: icechunk.Repository) -> None:
            repo.set_metadata({REPO_METADATA_KEY: _outline_metadata(outline)})
            if self.branch != "main":
                repo.create_branch(self.branch, repo.lookup_branch("main"))

        config = repository_config(outline.append_dim)
        self._repo = open_or_create_repository(self.target, config, initialise)
        self._check_branch(self._repo)
        return self._repo

    def _restarted(self, outline: TargetOutline) -> None:
        """After a force_new append: the cube's outline and history begin with it."""
        settings = _outline_metadata(outline)
        update_repository(
            self.target, lambda: self.repository.set_metadata({REPO_METADATA_KEY: settings})
        )
        self._stored = settings
        self._start_afresh = False
        self._dry_run_outline = None

    def _stored_settings(self) -> Mapping[str, Any]:
        if self._stored is None:
            if not self.exists():
                return {}
            with storage_errors(self.target.uri):
                settings = self.repository.get_metadata().get(REPO_METADATA_KEY)
            if not isinstance(settings, Mapping):
                return {}  # not (yet) written: look again next time
            self._stored = settings
        return self._stored

    def _check_branch(self, repo: icechunk.Repository) -> None:
        with storage_errors(self.target.uri):
            branches = repo.list_branches()
        if self.branch not in branches:
            raise CubeNotFoundError(
                f"no branch {self.branch!r} in {self.target.uri} "
                f"(branches: {', '.join(sorted(branches))})"
            )


def _outline_metadata(outline: TargetOutline) -> dict[str, Any]:
    """What the repository's metadata keeps of the cube (schema 1 plus the target outline)."""
    return {"schema": 1, **outline.to_metadata()}


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


def _plan(
    cube: CubeOutline | None, dataset: xr.Dataset, ref: SliceRef, outline: TargetOutline
) -> AppendPlan:
    """Tailor the slice to the target outline and check it against the cube (None: no cube)."""
    dim = outline.append_dim
    tailored = tailor_slice(dataset, outline, ref.name)
    if cube is None:
        return plan_first_slice(tailored, dim, ref.name, step=outline.step)
    converted = {name for name in cube.variables if outline.converts(name)}
    return plan_append(cube, tailored, ref.name, step=outline.step, converted=converted)


def _first_slice_plan(dataset: xr.Dataset, ref: SliceRef, outline: TargetOutline) -> AppendPlan:
    """Check that a slice can start the cube, configured encodings included."""
    plan = _plan(None, dataset, ref, outline)
    _with_creation_encoding(plan.dataset, outline)
    return plan


def _with_creation_encoding(dataset: xr.Dataset, outline: TargetOutline) -> xr.Dataset:
    dataset = dataset.copy(deep=False)
    for name, update in creation_encoding(dataset, outline.append_dim, outline).items():
        variable = dataset.variables[name]
        variable.encoding = {**variable.encoding, **update}
    for name, variable in dataset.variables.items():
        configured = outline.variable(str(name)).get("attrs")
        if configured:
            variable.attrs = {**variable.attrs, **configured}
    return dataset


def _write_evaluated_attrs(session: icechunk.Session, attrs: Mapping[str, Any]) -> None:
    """Compute the ``{{ }}`` attributes over the whole cube as this session holds it."""
    import zarr

    cube = _open_head(session.store, chunks={})
    zarr.open_group(session.store, mode="r+").attrs.update(evaluate_attrs(attrs, cube))


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
    if isinstance(slices, str | os.PathLike | xr.Dataset | SliceSource):
        slices = [slices]
    try:
        with logging_for_run(config.logging), profiled(config.profiling):
            logger.info("appending to %s (branch %s)", cube.target.uri, cube.branch)
            for item in slices:
                result = cube.append(item, dry_run=config.dry_run)
                logger.info("%s", result.describe())
                summary.results.append(result)
                if on_result is not None:
                    on_result(result)
            logger.info("%s", summary)
    finally:
        summary.elapsed = time.perf_counter() - started
    return summary


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
