"""versioncube: grow Zarr datacubes slice by slice, with version control built in.

Every slice append is one Icechunk commit, so appends are all-or-nothing, a failed run is
resumed by re-running it, and every earlier version of the cube stays readable.

The heavy imports (icechunk, xarray, zarr) happen on first use, so that ``versioncube --help``
starts instantly.
"""

from typing import TYPE_CHECKING

from versioncube._version import __version__
from versioncube.errors import (
    ConcurrentUpdateError,
    ConfigError,
    CubeNotFoundError,
    RefNotFoundError,
    SliceError,
    SliceOpenError,
    SliceValidationError,
    StorageError,
    TargetError,
    UnsafeProcessError,
    VersionCubeError,
    VersionError,
)

if TYPE_CHECKING:
    from versioncube.api import append, open_cube, open_dataset
    from versioncube.config import Config
    from versioncube.cube import AppendResult, Cube, RunSummary
    from versioncube.slice_sources import Context, SliceSource

_LAZY = {
    "append": "versioncube.api",
    "open_cube": "versioncube.api",
    "open_dataset": "versioncube.api",
    "Config": "versioncube.config",
    "Context": "versioncube.slice_sources",
    "Cube": "versioncube.cube",
    "AppendResult": "versioncube.cube",
    "RunSummary": "versioncube.cube",
    "SliceSource": "versioncube.slice_sources",
}

__all__ = [
    "AppendResult",
    "ConcurrentUpdateError",
    "Config",
    "ConfigError",
    "Context",
    "Cube",
    "CubeNotFoundError",
    "RefNotFoundError",
    "RunSummary",
    "SliceError",
    "SliceOpenError",
    "SliceSource",
    "SliceValidationError",
    "StorageError",
    "TargetError",
    "UnsafeProcessError",
    "VersionCubeError",
    "VersionError",
    "__version__",
    "append",
    "open_cube",
    "open_dataset",
]


def __getattr__(name: str):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'versioncube' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
