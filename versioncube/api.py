"""The public Python API: thin functions over the core, reached through :class:`~versioncube.
cube.Cube`.

``append(slices, config, **kwargs)`` is call-compatible with ``zappend.api.zappend`` and returns
the number of slices appended; ``append_slices`` does the same and returns the run's
:class:`~versioncube.write.run.RunSummary`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import xarray as xr

from versioncube.config import ConfigLike, load_config
from versioncube.cube import Cube, cube_from_config, open_cube
from versioncube.slices.identity import SliceLike
from versioncube.store.commit import CommitOptions
from versioncube.store.target import TargetLike
from versioncube.versions.refs import VersionLike
from versioncube.write.append import AppendResult
from versioncube.write.run import RunSummary, as_slice_list
from versioncube.write.updates import WriteResult

__all__ = [
    "Cube",
    "append",
    "append_slices",
    "delete",
    "open_cube",
    "open_dataset",
    "open_datatree",
    "write",
]


def append(
    slices: Iterable[SliceLike] | SliceLike, config: ConfigLike = None, **kwargs: Any
) -> int:
    """Append slices to the cube, one commit each; return how many were appended.

    ``slices``: paths, URIs or ``xarray.Dataset`` objects, appended in order; slices already in
    the branch's history are skipped, so re-running after a failure resumes the run.
    ``config``: a dict, a YAML/JSON file path, or a list of these, merged in order; keyword
    arguments (``target_dir=...``, ``append_dim=...``) override it.
    """
    return append_slices(slices, config, **kwargs).appended


def append_slices(
    slices: Iterable[SliceLike] | SliceLike,
    config: ConfigLike = None,
    *,
    on_result: Callable[[AppendResult], None] | None = None,
    options: CommitOptions | None = None,
    **kwargs: Any,
) -> RunSummary:
    """Like :func:`append`, but return the run's summary: every slice's result (appended,
    skipped or, with ``dry_run``, would append) and the time taken. ``on_result`` is called
    with each slice's result as it is done; ``options`` (a :class:`~versioncube.store.commit.
    CommitOptions`: message, metadata, retry policy) applies to every commit. An error stopping
    the run carries the summary of what was done before it as ``error.summary``."""
    settings = load_config(config, **kwargs)
    return cube_from_config(settings).append_all(slices, on_result=on_result, options=options)


def write(
    slices: Iterable[SliceLike] | SliceLike,
    config: ConfigLike = None,
    *,
    mode: str | None = None,
    options: CommitOptions | None = None,
    **kwargs: Any,
) -> list[WriteResult | AppendResult]:
    """Write slices by their append labels, one commit each, in order; return each result.

    ``mode`` (default: the ``write_mode`` setting, ``append``): ``upsert``, ``time_series``,
    ``replace``, ``insert`` or ``append`` (see docs/updates.md). A slice the cube already holds
    with the same content is skipped. ``config`` and ``kwargs`` as for :func:`append`.
    """
    cube = cube_from_config(load_config(config, **kwargs))
    return [cube.write(item, mode=mode, options=options) for item in as_slice_list(slices)]


def delete(
    labels: str | tuple[Any, Any],
    config: ConfigLike = None,
    *,
    options: CommitOptions | None = None,
    **kwargs: Any,
) -> WriteResult:
    """Remove the append labels within ``labels`` (``"A..B"``, one label, or a pair) from the
    cube the configuration names, in one commit."""
    return cube_from_config(load_config(config, **kwargs)).delete(labels, options=options)


def open_dataset(
    target: TargetLike,
    version: VersionLike = None,
    *,
    level: int | None = None,
    group: str | None = None,
    branch: str = "main",
    storage_options: Mapping[str, Any] | None = None,
    virtual_credentials: Mapping[str, Any] | None = None,
    **xarray_options: Any,
) -> xr.Dataset:
    """The cube at ``target`` as it is, or as it was at ``version``, as a lazy xarray Dataset.

    ``version``: a tag, a branch, ``BRANCH~N`` or ``~N``, a snapshot id (or a unique prefix),
    or an ISO 8601 date-time string or ``datetime`` meaning "as of". ``level``: a level of a
    multi-level pyramid (default 0, the finest); ``group``: one group of a tree, by its path
    (``"/atmos"``). ``virtual_credentials`` authorise the files a cube of virtual slices
    references (see :func:`open_cube`). ``xarray_options`` go to ``xarray.open_dataset``
    (``chunks={}`` by default).
    """
    cube = open_cube(target, branch, storage_options, virtual_credentials=virtual_credentials)
    return cube.to_xarray(version, level=level, group=group, **xarray_options)


def open_datatree(
    target: TargetLike,
    version: VersionLike = None,
    *,
    branch: str = "main",
    storage_options: Mapping[str, Any] | None = None,
    virtual_credentials: Mapping[str, Any] | None = None,
    **xarray_options: Any,
) -> xr.DataTree:
    """Every group of the cube at ``target`` (the nodes of a tree, the levels of a pyramid),
    as it is or as it was at ``version`` (as in :func:`open_dataset`), as a lazy DataTree."""
    cube = open_cube(target, branch, storage_options, virtual_credentials=virtual_credentials)
    return cube.to_datatree(version, **xarray_options)
