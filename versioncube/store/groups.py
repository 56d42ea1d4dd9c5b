"""Reading a cube made of groups: the levels of a pyramid, the nodes of a tree.

A cube is one group (the root) or several: a pyramid keeps its levels as the groups ``0``,
``1``, ... with their description in the root's attributes (``xcube_levels``, see
:mod:`versioncube.layout.levels`); a tree keeps each node of an ``xarray.DataTree`` as the group
at its path. Every reader lists the groups here, so that versioncube's own groups (see
:func:`versioncube.store.dataset.is_internal_group`) are never shown as data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import icechunk
import xarray as xr

from versioncube.errors import CubeNotFoundError
from versioncube.store.dataset import NO_DATA, is_internal_group, open_store, open_version
from versioncube.store.translate import translated

#: The root-group attribute that describes a pyramid (xcube's ``.zlevels`` keys).
LEVELS_ATTR = "xcube_levels"


def group_paths(store: Any) -> list[str]:
    """Every data group of the version in ``store``: ``""`` (the root) first, parents before
    children, siblings in natural order (level ``10`` after ``9``); none for an empty version.
    """
    import zarr
    import zarr.errors

    try:
        root = zarr.open_group(store, mode="r")
    except (zarr.errors.GroupNotFoundError, zarr.errors.NodeNotFoundError, FileNotFoundError):
        return []
    paths = [""]

    def walk(group: zarr.Group, prefix: str) -> None:
        names = [name for name in group.group_keys() if not is_internal_group(name)]
        for name in sorted(names, key=_natural):
            child = group[name]
            assert isinstance(child, zarr.Group)
            paths.append(prefix + name)
            walk(child, f"{prefix}{name}/")

    walk(root, "")
    return paths


def _natural(name: str) -> tuple[int, int, str]:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def group_order(path: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key of group paths in the order :func:`group_paths` lists them."""
    return tuple(_natural(name) for name in path.strip("/").split("/") if name)


def root_attrs(store: Any) -> dict[str, Any]:
    """The root group's attributes ({} for an empty version)."""
    import zarr
    import zarr.errors

    try:
        return dict(zarr.open_group(store, mode="r").attrs)
    except (zarr.errors.GroupNotFoundError, zarr.errors.NodeNotFoundError, FileNotFoundError):
        return {}


def tree_path(group: str) -> str:
    """A group's path as a DataTree names it: ``"atmos/upper"`` -> ``"/atmos/upper"``."""
    return "/" + group.strip("/")


def store_group(path: str | None) -> str | None:
    """A DataTree path as a Zarr group (None: the root): ``"/atmos"`` -> ``"atmos"``."""
    group = (path or "").strip("/")
    return group or None


def open_tree_store(store: Any, *, where: str = "the cube", **options: Any) -> xr.DataTree:
    """Every data group of the version in ``store`` as one DataTree (versioncube's own groups
    left out); ``options`` go to ``xarray.open_dataset`` for each group."""
    with translated(where):
        paths = group_paths(store)
    if not paths:
        raise CubeNotFoundError(f"{where} {NO_DATA}")
    datasets = {
        tree_path(path): open_store(store, path or None, where=where, **options) for path in paths
    }
    return xr.DataTree.from_dict(datasets)


def open_tree_version(
    repo: icechunk.Repository, snapshot_id: str, *, where: str = "the cube", **options: Any
) -> xr.DataTree:
    """The version at ``snapshot_id`` as a DataTree (see :func:`open_tree_store`)."""
    with translated(where):
        session = repo.readonly_session(snapshot_id=snapshot_id)
    return open_tree_store(session.store, where=where, **options)


def open_group_version(
    repo: icechunk.Repository,
    snapshot_id: str,
    group: str,
    *,
    where: str = "the cube",
    **options: Any,
) -> xr.Dataset:
    """One group of a tree at ``snapshot_id`` as the DataTree sees it: with the coordinates it
    inherits from the groups above it (a time coordinate kept at the root, say)."""
    path = tree_path(group)
    if is_internal_group(path):
        raise CubeNotFoundError(f"{where} has no group {path!r}")
    parts = path.strip("/").split("/")
    lineage = ["/"] + ["/" + "/".join(parts[:depth]) for depth in range(1, len(parts) + 1)]
    datasets = {
        node: open_version(repo, snapshot_id, store_group(node), where=where, **options)
        for node in lineage
    }
    return xr.DataTree.from_dict(datasets)[path].to_dataset()


def levels_of(store: Any) -> Mapping[str, Any] | None:
    """The pyramid description in the root's attributes (``xcube_levels``), or None."""
    spec = root_attrs(store).get(LEVELS_ATTR)
    return spec if isinstance(spec, Mapping) else None


@dataclasses.dataclass(frozen=True)
class VersionLevels:
    """The levels of a pyramid at one version: ``len(levels)``, ``levels[n]`` (a lazy
    Dataset, level 0 the finest), iteration, and ``spec`` (xcube's ``.zlevels`` keys)."""

    repo: icechunk.Repository
    snapshot_id: str
    spec: Mapping[str, Any]
    where: str = "the cube"
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.spec["num_levels"])

    def __getitem__(self, level: int) -> xr.Dataset:
        if not 0 <= level < len(self):
            raise IndexError(f"{self.where} has levels 0 to {len(self) - 1}, not {level}")
        return open_version(
            self.repo, self.snapshot_id, str(level), where=self.where, **self.options
        )

    def __iter__(self) -> Iterator[xr.Dataset]:
        return (self[level] for level in range(len(self)))

    def __repr__(self) -> str:
        return f"VersionLevels({len(self)} levels at {self.snapshot_id[:12]} of {self.where})"


def version_levels(
    repo: icechunk.Repository, snapshot_id: str, *, where: str = "the cube", **options: Any
) -> VersionLevels:
    """The levels of the pyramid at ``snapshot_id``; CubeNotFoundError when it is none."""
    with translated(where):
        session = repo.readonly_session(snapshot_id=snapshot_id)
        spec = levels_of(session.store)
    if spec is None:
        raise CubeNotFoundError(
            f"{where} has no levels: it is not a multi-level pyramid (the setting levels makes "
            "one when a cube is created)"
        )
    return VersionLevels(repo, snapshot_id, spec, where, options)


def open_level(
    repo: icechunk.Repository,
    snapshot_id: str,
    level: int,
    *,
    where: str = "the cube",
    **options: Any,
) -> xr.Dataset:
    """Level ``level`` of the pyramid at ``snapshot_id`` as a lazy Dataset."""
    levels = version_levels(repo, snapshot_id, where=where, **options)
    if not 0 <= level < len(levels):
        raise CubeNotFoundError(
            f"{where} has no level {level}: its levels are 0 to {len(levels) - 1}"
        )
    return levels[level]


def open_cube_version(
    repo: icechunk.Repository,
    snapshot_id: str,
    *,
    level: int | None = None,
    group: str | None = None,
    where: str = "the cube",
    **options: Any,
) -> xr.Dataset:
    """The dataset a reader means by the cube at ``snapshot_id``: a flat cube's root; level
    ``level`` of a pyramid (default 0, the finest); ``group`` of a tree (a DataTree path;
    default: the root). An empty version, or a tree with nothing at its root and no ``group``
    named, is CubeNotFoundError saying what to read instead."""
    if level is not None:
        return open_level(repo, snapshot_id, level, where=where, **options)
    if store_group(group) is not None:
        return open_group_version(repo, snapshot_id, str(group), where=where, **options)
    dataset = open_version(repo, snapshot_id, where=where, **options)
    if dataset.variables:
        return dataset
    with translated(where):
        store = repo.readonly_session(snapshot_id=snapshot_id).store
        if levels_of(store) is not None:
            return open_level(repo, snapshot_id, 0, where=where, **options)
        groups = group_paths(store)
    if len(groups) > 1:
        raise CubeNotFoundError(
            f"{where} is a tree of groups with no data at its root: read it with "
            f"to_datatree() (open_datatree), or one group with group= (one of "
            f"{', '.join(tree_path(path) for path in groups[1:])})"
        )
    raise CubeNotFoundError(f"{where} {NO_DATA}")
