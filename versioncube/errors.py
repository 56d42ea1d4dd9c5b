"""One exception tree for everything versioncube reports to its users.

Messages are complete where they are raised: which slice, which variable or dimension, what was
expected and what was found. The CLI prints them as one line and exits with status 1.

Each class also subclasses the builtin exception that zappend raises in the same case
(``ValueError`` for a bad configuration, slice or step, ``FileNotFoundError`` for a missing slice
or target parent, ``OSError`` for a slice that cannot be read or a storage failure, ``TypeError``
and ``ImportError`` for a slice item or slice source of the wrong kind), so that code written
around ``zappend()`` keeps catching them.
"""

from __future__ import annotations

from typing import Any


class VersionCubeError(Exception):
    """Base of every error versioncube raises on purpose.

    ``summary`` is the run's :class:`~versioncube.write.run.RunSummary` up to the error when the
    error stopped a run of several slices (what was committed before it), else None.
    """

    summary: Any = None


class ConfigError(VersionCubeError, ValueError):
    """A configuration value is unknown, of the wrong type, or contradicts another."""


class TargetError(VersionCubeError, ValueError):
    """The target string or its storage options cannot be turned into an Icechunk repository."""


class TargetNotFoundError(TargetError, FileNotFoundError):
    """The folder a new local cube would be created in does not exist (zappend's "target parent
    directory does not exist")."""


class SliceSourceImportError(ConfigError, ImportError):
    """``slice_source`` names a module or attribute that cannot be imported."""


class SliceSourceTypeError(ConfigError, TypeError):
    """``slice_source`` names something that is not a function or class."""


class CubeNotFoundError(VersionCubeError, FileNotFoundError):
    """The target holds no repository, or the branch holds no cube yet."""


class InconsistentCubeError(VersionCubeError, ValueError):
    """The cube's data cannot be read as one dataset (arrays of different lengths, ...), for
    example after another tool wrote to it; ``versioncube verify`` lists what is wrong."""


class SchemaError(VersionCubeError, ValueError):
    """A variable cannot be added to the cube or dropped from it (it exists already, it is
    not there, or other variables need it); nothing was written."""


class StorageError(VersionCubeError, OSError):
    """The storage behind the target failed unexpectedly (the branch tip was not moved)."""


class SliceError(VersionCubeError):
    """Base for problems with one slice; ``slice_name`` names it."""

    def __init__(self, slice_name: str, message: str):
        super().__init__(f"slice {slice_name}: {message}")
        self.slice_name = slice_name
        self.reason = message

    def __reduce__(self) -> tuple[type[SliceError], tuple[str, str]]:
        # pickled by its arguments: a dask worker's error reaches the client as it was raised
        return (type(self), (self.slice_name, self.reason))


class SliceOpenError(SliceError, OSError):
    """A slice could not be opened or read."""


class SliceNotFoundError(SliceOpenError, FileNotFoundError):
    """A slice file is not there (also after waiting for it with ``slice_polling``)."""


class SliceTypeError(SliceOpenError, TypeError):
    """A slice item is neither a path, a URI, a dataset nor a slice source."""


class SliceValidationError(SliceError, ValueError):
    """A slice does not fit the cube (or, for the first slice, cannot start one)."""


class SliceChangedError(SliceError, ValueError):
    """A file slice the cube already holds has changed on storage since it was appended.

    ``snapshot_id`` is the commit that holds the old content.
    """

    def __init__(self, slice_name: str, message: str, snapshot_id: str):
        super().__init__(slice_name, message)
        self.snapshot_id = snapshot_id

    def __reduce__(self) -> tuple[type[SliceError], tuple[str, str, str]]:  # type: ignore[override]
        return (type(self), (self.slice_name, self.reason, self.snapshot_id))


class LabelRangeError(VersionCubeError, ValueError):
    """A delete names no usable label range (unparseable, reversed, or removing every label)."""


class RefNotFoundError(VersionCubeError, LookupError):
    """A tag, branch, snapshot or date names no version of the cube."""


class VersionError(VersionCubeError, ValueError):
    """A version operation is not possible (a tag that exists, a promote that is not a
    fast-forward, a garbage collection that is not safe, ...)."""


class DestinationExistsError(VersionCubeError, FileExistsError):
    """An export destination already holds something (and overwriting was not asked for)."""


class MissingDependencyError(VersionCubeError, ImportError):
    """Something needs an optional extra that is not installed (pictures need
    ``pip install 'versioncube[plot]'``)."""


class UnsafeProcessError(VersionCubeError):
    """versioncube was called in a process that cannot use Icechunk safely (a fork() child)."""


class ConcurrentUpdateError(VersionCubeError, OSError):
    """Another writer moved the branch tip first (nothing of this change was committed)."""


class VirtualAccessError(VersionCubeError, PermissionError):
    """A version references files (virtual chunks) under a container this reader has not
    authorised; the message names the container and how to authorise it."""


class StaleSourceError(VersionCubeError):
    """A file a cube references changed or vanished after its references were committed."""


class ClusterError(VersionCubeError, RuntimeError):
    """The dask cluster cannot do the writes asked of it: no scheduler at the address, workers
    that cannot see a local target, chunks bigger than a worker's memory allows."""
