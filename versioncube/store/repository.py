"""Opening and creating the Icechunk repository behind a target, and its settings."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import icechunk

from versioncube.display.format import first_line
from versioncube.errors import CubeNotFoundError, TargetError, TargetNotFoundError
from versioncube.store.commit import LOCK_FILE_NAME, repository_lock, update_repository
from versioncube.store.containers import (
    SETTINGS_CONTAINERS,
    ContainerSpec,
    CredentialsLike,
    authorised,
)
from versioncube.store.target import Target
from versioncube.store.translate import translated

#: Chunks along the append dimension that share one manifest file. Appending then rewrites one
#: bounded manifest instead of one that grows with the cube.
MANIFEST_SPLIT_SIZE = 1024
CREATION_WAIT_STEPS = 100  # tenths of a second to wait for another writer's new repository


def repository_config(
    append_dim: str, containers: Iterable[ContainerSpec] = ()
) -> icechunk.RepositoryConfig:
    """Repository settings for a cube: manifests split along the append dimension, and the
    virtual chunk containers its referenced files live in (see :mod:`.containers`)."""
    splitting = icechunk.ManifestSplittingConfig.from_dict(
        {
            icechunk.ManifestSplitCondition.AnyArray(): {
                icechunk.ManifestSplitDimCondition.DimensionName(append_dim): MANIFEST_SPLIT_SIZE
            }
        }
    )
    config = icechunk.RepositoryConfig(manifest=icechunk.ManifestConfig(splitting=splitting))
    for spec in containers:
        config.set_virtual_chunk_container(spec.container())
    return config


def session_config() -> icechunk.RepositoryConfig:
    """What versioncube's own sessions change of a repository's saved settings (never saved):
    no manifest preloading.

    By default Icechunk starts loading the manifests of coordinate-like arrays whenever a
    session starts, matching their names with patterns it compiles each time. That costs
    every session about 2 ms at 100 commits and 8-18 ms at 10,000 (measured with benchmark
    H's cubes), twice per append, while an append reads only the cube's last labels and a
    read fetches the manifests it needs anyway.
    """
    preload = icechunk.ManifestPreloadConfig(max_total_refs=0)
    return icechunk.RepositoryConfig(manifest=icechunk.ManifestConfig(preload=preload))


def saved_config(target: Target) -> icechunk.RepositoryConfig:
    """The repository's saved settings, without what :func:`session_config` changes."""
    with translated(target.uri):
        saved = icechunk.Repository.fetch_config(target.storage())
    return saved if saved is not None else icechunk.RepositoryConfig.default()


def _opened(storage: icechunk.Storage) -> icechunk.Repository:
    """The repository in ``storage``, opened for versioncube's sessions (:func:`session_config`)."""
    return icechunk.Repository.open(storage, config=session_config())


def open_repository(target: Target) -> icechunk.Repository:
    """Open the repository at the target, or raise CubeNotFoundError when there is none.

    One call: asking first whether it exists reads the repository's object once more, and
    that object grows with the history.
    """
    if target.kind == "local" and Path(target.location).is_file():
        raise TargetError(f"target {target.uri} is a file, not a folder for a cube")
    storage = target.storage()
    with translated(target.uri):
        try:
            return _opened(storage)
        except icechunk.RepositoryNotFoundError:
            raise CubeNotFoundError(f"no versioncube repository at {target.uri}") from None


def open_or_create_repository(
    target: Target,
    config: icechunk.RepositoryConfig,
    initialise: Callable[[icechunk.Repository], None],
) -> icechunk.Repository:
    """Create the repository and ``initialise`` it, or open it if another writer was first.

    On local disk the check and the creation happen under the update lock, in a folder that is
    new, empty or already a repository (never among a user's other files). On object stores
    Icechunk's creation is itself conditional, and the loser of a race opens the winner's; the
    creation tries once, so that a missing bucket or wrong credentials are reported at once
    instead of after a minute of retries.
    """
    storage = target.storage()
    if target.kind == "local":
        _refuse_other_files(target, foreign_only=True)  # before the lock file is made there
        _make_folder(target)
    with translated(target.uri), repository_lock(target):
        if icechunk.Repository.exists(storage):
            return _opened(storage)
        if target.kind == "local":
            _refuse_other_files(target)
        try:
            icechunk.Repository.create(
                storage, config=_trying_once(config), check_clean_root=target.kind != "local"
            )
        except icechunk.StorageError as error:
            raise TargetError(
                f"cannot create the cube at {target.uri}: {first_line(error)}"
            ) from None
        except icechunk.IcechunkError:
            # another writer is creating it right now: its repository appears within moments
            for _ in range(CREATION_WAIT_STEPS):
                if icechunk.Repository.exists(storage):
                    return _opened(storage)
                time.sleep(0.1)
            raise
        repo = icechunk.Repository.open(storage, config=config)  # with the usual retries
        repo.save_config()
        repo = repo.reopen(config=session_config())
        initialise(repo)
        return repo


def _trying_once(config: icechunk.RepositoryConfig) -> icechunk.RepositoryConfig:
    """``config`` with storage requests tried once (for the creation only)."""
    retries = icechunk.StorageRetriesSettings(max_tries=1)
    once = icechunk.RepositoryConfig(
        manifest=config.manifest, storage=icechunk.StorageSettings(retries=retries)
    )
    for container in (config.virtual_chunk_containers or {}).values():
        once.set_virtual_chunk_container(container)
    return once


def _make_folder(target: Target) -> None:
    """Make the cube's folder in its existing parent, or say why it cannot be made."""
    folder = Path(target.location)
    if folder.exists() and not folder.is_dir():
        raise TargetError(f"target {target.uri} is a file, not a folder for a cube")
    if not folder.parent.is_dir():  # as zappend: a mistyped path must not start a cube elsewhere
        raise TargetNotFoundError(
            f"target {target.uri}: its parent folder {folder.parent} does not exist (create it "
            "first)"
        )
    try:
        folder.mkdir(exist_ok=True)
    except OSError as error:
        reason = error.strerror or first_line(error)
        raise TargetError(f"cannot create the cube folder {target.uri}: {reason}") from None


#: What Icechunk and versioncube put in a repository folder.
REPOSITORY_ENTRIES = frozenset(
    {"repo", "refs", "snapshots", "manifests", "chunks", "transactions", "overwritten",
     "config.yaml", LOCK_FILE_NAME}
)  # fmt: skip


def _refuse_other_files(target: Target, *, foreign_only: bool = False) -> None:
    """Never create a cube among a user's other files.

    Called under the update lock with the repository known to be absent (so another writer's
    half-made repository is not mistaken for a user's files); with ``foreign_only`` before the
    lock, where only names a repository never has count, so that nothing (not even the lock
    file) is made in a folder of other files.
    """
    folder = Path(target.location)
    if not folder.is_dir():
        return
    ignored = REPOSITORY_ENTRIES if foreign_only else {LOCK_FILE_NAME}

    def entry(name: str) -> str:
        # before the lock, a repository entry as another writer is creating it: Icechunk's
        # local store writes ``NAME#N`` and renames it to NAME (``repo#1``, seen by four
        # racing writers)
        return name.split("#", 1)[0] if foreign_only else name

    others = sorted(path.name for path in folder.iterdir() if entry(path.name) not in ignored)
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise TargetError(
            f"target {target.uri} is a folder with other files ({shown}), not a cube: "
            "give a new or empty folder for a new cube (is the target the data folder?)"
        )


#: Repository-metadata key of what versioncube keeps about the cube (its target outline).
SETTINGS_KEY = "versioncube"


class CubeStore:
    """The repository at a target and one branch of it: the handle every layer above uses.

    Creating it reads nothing; the repository is opened on first use (``repository``) and
    created by the first write (:meth:`create`). ``settings()`` is what versioncube stored
    about the cube in the repository's metadata (read once, then kept).

    The repository is opened with its virtual chunk containers authorised: by default those
    versioncube set up for local folders or environment credentials, plus those in
    ``virtual_credentials`` (prefix -> credentials, see :mod:`.containers`).
    """

    def __init__(
        self,
        target: Target,
        branch: str = "main",
        virtual_credentials: Mapping[str, CredentialsLike] | None = None,
    ):
        self.target = target
        self.branch = branch
        self.virtual_credentials = dict(virtual_credentials or {})
        self._writer_access: dict[str, Any] = {}  # containers a writer reaches with its keys
        self._repo: icechunk.Repository | None = None
        self._settings: Mapping[str, Any] | None = None

    def __repr__(self) -> str:
        return f"CubeStore({self.target.uri!r}, branch={self.branch!r})"

    @property
    def where(self) -> str:
        """The target's URI, as messages name the cube."""
        return self.target.uri

    @property
    def repository(self) -> icechunk.Repository:
        """The Icechunk repository (raises CubeNotFoundError when there is none yet)."""
        if self._repo is None:
            repo = open_repository(self.target)
            self._check_branch(repo)
            self._repo = self._authorised(repo)
        return self._repo

    def _authorised(self, repo: icechunk.Repository) -> icechunk.Repository:
        """The repository with its virtual chunk containers authorised (see the class)."""
        if not repo.config.virtual_chunk_containers:
            return repo
        with translated(self.where):
            settings = repo.get_metadata().get(SETTINGS_KEY)
            settings = settings if isinstance(settings, Mapping) else {}
            return authorised(repo, settings, self.virtual_credentials, self._writer_access)

    def add_containers(self, specs: Iterable[ContainerSpec], access: Mapping[str, Any]) -> None:
        """Make sure the repository has these virtual chunk containers, saved in its
        configuration and recorded in versioncube's settings; authorise them in this process
        with ``access`` (prefix -> credentials, the writer's own)."""
        self._writer_access.update(access)
        repo = self.repository
        known = repo.config.virtual_chunk_containers or {}
        recorded = dict(self.settings().get(SETTINGS_CONTAINERS) or {})
        new = [spec for spec in specs if spec.prefix not in known]
        unrecorded = [spec for spec in specs if recorded.get(spec.prefix) != spec.access]
        if new or unrecorded:

            def save() -> icechunk.Repository:
                config = saved_config(self.target)
                for spec in new:
                    config.set_virtual_chunk_container(spec.container())
                saving = icechunk.Repository.open(self.target.storage(), config=config)
                saving.save_config()
                settings = dict(self.settings())
                recorded.update({spec.prefix: spec.access for spec in specs})
                settings[SETTINGS_CONTAINERS] = recorded
                saving.update_metadata({SETTINGS_KEY: settings})
                self._settings = settings
                return saving.reopen(config=session_config())

            repo = update_repository(self.target, save)
        self._repo = self._authorised(repo)

    def exists(self) -> bool:
        """Whether the target holds a repository with this branch."""
        try:
            _ = self.repository
        except CubeNotFoundError:
            return False
        return True

    def tip(self) -> str:
        """The snapshot id at the branch's tip."""
        with translated(self.where):
            return self.repository.lookup_branch(self.branch)

    def settings(self) -> Mapping[str, Any]:
        """What versioncube stored about the cube in the repository metadata ({} if nothing)."""
        if self._settings is None:
            if not self.exists():
                return {}
            with translated(self.where):
                settings = self.repository.get_metadata().get(SETTINGS_KEY)
            if not isinstance(settings, Mapping):
                return {}  # not (yet) written: look again next time
            self._settings = settings
        return self._settings

    def save_settings(self, settings: Mapping[str, Any]) -> None:
        """Replace what versioncube keeps about the cube (after a cube was started afresh);
        the record of its virtual chunk containers stays (its older versions use them)."""
        repo = self.repository
        containers = self.settings().get(SETTINGS_CONTAINERS)
        if containers and SETTINGS_CONTAINERS not in settings:
            settings = {**settings, SETTINGS_CONTAINERS: containers}
        update_repository(self.target, lambda: repo.set_metadata({SETTINGS_KEY: dict(settings)}))
        self._settings = settings

    def create(
        self, settings: Mapping[str, Any], append_dim: str, containers: Iterable[ContainerSpec] = ()
    ) -> icechunk.Repository:
        """Create the repository (or open the one another writer just created) with this
        branch, ``settings`` and virtual chunk ``containers``."""
        containers = list(containers)
        if containers:
            recorded = {spec.prefix: spec.access for spec in containers}
            settings = {**settings, SETTINGS_CONTAINERS: recorded}

        def initialise(repo: icechunk.Repository) -> None:
            repo.set_metadata({SETTINGS_KEY: dict(settings)})
            if self.branch != "main":
                repo.create_branch(self.branch, repo.lookup_branch("main"))

        config = repository_config(append_dim, containers)
        repo = open_or_create_repository(self.target, config, initialise)
        self._check_branch(repo)
        self._repo = self._authorised(repo)
        return self._repo

    def _check_branch(self, repo: icechunk.Repository) -> None:
        with translated(self.where):
            try:
                repo.lookup_branch(self.branch)
                return
            except icechunk.RefNotFoundError:
                branches = repo.list_branches()
        if self.branch not in branches:
            raise CubeNotFoundError(
                f"no branch {self.branch!r} in {self.where} "
                f"(branches: {', '.join(sorted(branches))})"
            )
