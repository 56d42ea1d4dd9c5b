"""The public Python API: thin functions over the core in :mod:`versioncube.cube`.

``append(slices, config, **kwargs)`` is call-compatible with ``zappend.api.zappend``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from versioncube.config import ConfigLike, load_config
from versioncube.cube import Cube, append_slices, open_cube
from versioncube.slices import SliceLike

__all__ = ["Cube", "append", "open_cube"]


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
