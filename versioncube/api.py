"""The public Python API: thin functions over the core in :mod:`versioncube.cube`.

``append(slices, config, **kwargs)`` is call-compatible with ``zappend.api.zappend``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import xarray as xr

from versioncube.config import ConfigLike, load_config
from versioncube.cube import Cube, append_slices, open_cube
from versioncube.refs import VersionLike
from versioncube.slices import SliceLike
from versioncube.storage import TargetLike

__all__ = ["Cube", "append", "open_cube", "open_dataset"]


def append(
    slices: Iterable[SliceLike] | SliceLike, config: ConfigLike = None, **kwargs: Any
) -> int:
    """Append slices to the cube, one commit each; return how many were appended.

    ``slices``: paths, URIs or ``xarray.Dataset`` objects, appended in order; slices already in
    the branch's history are skipped, so re-running after a failure resumes the run.
    ``config``: a dict, a YAML/JSON file path, or a list of these, merged in order; keyword
    arguments (``target_dir=...``, ``append_dim=...``) override it.
    """
    settings = load_config(config, **kwargs)
    return append_slices(slices, settings).appended  # type: ignore[arg-type]


def open_dataset(
    target: TargetLike,
    version: VersionLike = None,
    *,
    branch: str = "main",
    storage_options: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """The cube at ``target`` as it is, or as it was at ``version``, as a lazy xarray Dataset.

    ``version``: a tag, a branch, ``BRANCH~N`` or ``~N``, a snapshot id (or a unique prefix),
    or an ISO 8601 date-time string or ``datetime`` meaning "as of".
    """
    return open_cube(target, branch, storage_options).to_xarray(version)
