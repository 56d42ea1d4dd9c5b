"""versioncube: grow Zarr datacubes slice by slice, with version control built in.

Every slice append is one Icechunk commit, so appends are all-or-nothing, a failed run is
resumed by re-running it, and every earlier version of the cube stays readable.

The heavy imports (icechunk, xarray, zarr) happen on first use, so that ``versioncube --help``
starts instantly.
"""

from typing import TYPE_CHECKING

from versioncube._version import __version__
from versioncube.errors import (
    ClusterError,
    ConcurrentUpdateError,
    ConfigError,
    CubeNotFoundError,
    DestinationExistsError,
    InconsistentCubeError,
    LabelRangeError,
    MissingDependencyError,
    RefNotFoundError,
    SchemaError,
    SliceChangedError,
    SliceError,
    SliceNotFoundError,
    SliceOpenError,
    SliceSourceImportError,
    SliceSourceTypeError,
    SliceTypeError,
    SliceValidationError,
    StorageError,
    TargetError,
    TargetNotFoundError,
    UnsafeProcessError,
    VersionCubeError,
    VersionError,
)

if TYPE_CHECKING:
    from versioncube.api import (
        append,
        append_slices,
        delete,
        open_cube,
        open_dataset,
        open_datatree,
    )
    from versioncube.config import Config
    from versioncube.cube import Cube
    from versioncube.slices.sources import Context, SliceSource
    from versioncube.store.commit import CommitOptions, RetryPolicy
    from versioncube.write.append import AppendResult
    from versioncube.write.run import RunSummary
    from versioncube.write.updates import WriteResult

_LAZY = {
    "append": "versioncube.api",
    "append_slices": "versioncube.api",
    "delete": "versioncube.api",
    "WriteResult": "versioncube.write.updates",
    "open_cube": "versioncube.api",
    "open_dataset": "versioncube.api",
    "open_datatree": "versioncube.api",
    "Config": "versioncube.config",
    "Context": "versioncube.slices.sources",
    "Cube": "versioncube.cube",
    "AppendResult": "versioncube.write.append",
    "RunSummary": "versioncube.write.run",
    "SliceSource": "versioncube.slices.sources",
    "CommitOptions": "versioncube.store.commit",
    "RetryPolicy": "versioncube.store.commit",
}

__all__ = [
    "AppendResult",
    "ClusterError",
    "CommitOptions",
    "ConcurrentUpdateError",
    "Config",
    "ConfigError",
    "Context",
    "Cube",
    "CubeNotFoundError",
    "DestinationExistsError",
    "InconsistentCubeError",
    "LabelRangeError",
    "MissingDependencyError",
    "RefNotFoundError",
    "RetryPolicy",
    "RunSummary",
    "SchemaError",
    "SliceChangedError",
    "SliceError",
    "SliceNotFoundError",
    "SliceOpenError",
    "SliceSource",
    "SliceSourceImportError",
    "SliceSourceTypeError",
    "SliceTypeError",
    "SliceValidationError",
    "StorageError",
    "TargetError",
    "TargetNotFoundError",
    "UnsafeProcessError",
    "VersionCubeError",
    "VersionError",
    "WriteResult",
    "__version__",
    "append",
    "append_slices",
    "delete",
    "open_cube",
    "open_dataset",
    "open_datatree",
]


def __getattr__(name: str) -> object:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'versioncube' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
