"""Opening and creating the Icechunk repository behind a target, and its settings."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import icechunk

from versioncube.errors import CubeNotFoundError
from versioncube.store.commit import repository_lock, update_repository
from versioncube.store.target import Target
from versioncube.store.translate import translated

#: Chunks along the append dimension that share one manifest file. Appending then rewrites one
#: bounded manifest instead of one that grows with the cube.
MANIFEST_SPLIT_SIZE = 1024
CREATION_WAIT_STEPS = 100  # tenths of a second to wait for another writer's new repository


def repository_config(append_dim: str) -> icechunk.RepositoryConfig:
    """Repository settings for a cube: manifests split along the append dimension."""
    splitting = icechunk.ManifestSplittingConfig.from_dict(
        {
            icechunk.ManifestSplitCondition.AnyArray(): {
                icechunk.ManifestSplitDimCondition.DimensionName(append_dim): MANIFEST_SPLIT_SIZE
            }
        }
    )
    return icechunk.RepositoryConfig(manifest=icechunk.ManifestConfig(splitting=splitting))


def open_repository(target: Target) -> icechunk.Repository:
    """Open the repository at the target, or raise CubeNotFoundError when there is none.

    One call: asking first whether it exists reads the repository's object once more, and
    that object grows with the history.
    """
    storage = target.storage()
    with translated(target.uri):
        try:
            return icechunk.Repository.open(storage)
        except icechunk.RepositoryNotFoundError:
            raise CubeNotFoundError(f"no versioncube repository at {target.uri}") from None


def open_or_create_repository(
    target: Target,
    config: icechunk.RepositoryConfig,
    initialise: Callable[[icechunk.Repository], None],
) -> icechunk.Repository:
    """Create the repository and ``initialise`` it, or open it if another writer was first.

    On local disk the check and the creation happen under the update lock; on object stores
    Icechunk's creation is itself conditional, and the loser of a race opens the winner's.
    """
    storage = target.storage()
    if target.kind == "local":
        Path(target.location).mkdir(parents=True, exist_ok=True)
    with translated(target.uri), repository_lock(target):
        if icechunk.Repository.exists(storage):
            return icechunk.Repository.open(storage)
        try:
            repo = icechunk.Repository.create(
                storage, config=config, check_clean_root=target.kind != "local"
            )
        except icechunk.IcechunkError:
            # another writer is creating it right now: its repository appears within moments
            for _ in range(CREATION_WAIT_STEPS):
                if icechunk.Repository.exists(storage):
                    return icechunk.Repository.open(storage)
                time.sleep(0.1)
            raise
        repo.save_config()
        initialise(repo)
        return repo


#: Repository-metadata key of what versioncube keeps about the cube (its target outline).
SETTINGS_KEY = "versioncube"


class CubeStore:
    """The repository at a target and one branch of it: the handle every layer above uses.

    Creating it reads nothing; the repository is opened on first use (``repository``) and
    created by the first write (:meth:`create`). ``settings()`` is what versioncube stored
    about the cube in the repository's metadata (read once, then kept).
    """

    def __init__(self, target: Target, branch: str = "main"):
        self.target = target
        self.branch = branch
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
            self._repo = repo
        return self._repo

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
        """Replace what versioncube keeps about the cube (after a cube was started afresh)."""
        repo = self.repository
        update_repository(self.target, lambda: repo.set_metadata({SETTINGS_KEY: dict(settings)}))
        self._settings = settings

    def create(self, settings: Mapping[str, Any], append_dim: str) -> icechunk.Repository:
        """Create the repository (or open the one another writer just created) with this
        branch and ``settings``."""

        def initialise(repo: icechunk.Repository) -> None:
            repo.set_metadata({SETTINGS_KEY: dict(settings)})
            if self.branch != "main":
                repo.create_branch(self.branch, repo.lookup_branch("main"))

        repo = open_or_create_repository(self.target, repository_config(append_dim), initialise)
        self._check_branch(repo)
        self._repo = repo
        return repo

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
