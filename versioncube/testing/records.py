"""Commits written with Icechunk directly, carrying a versioncube record of any operation.

The history picture, ``log`` and ``diff`` read commits by their record's operation and label
range. Operations that are not built yet (updates, deletes) are tested with commits made here:
a real change to the cube's arrays, committed with the record such an operation would write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import zarr

from versioncube.versions.record import CommitRecord

if TYPE_CHECKING:
    from versioncube.cube import Cube


def commit_record(cube: Cube, record: CommitRecord, write: Callable[[zarr.Group], None]) -> str:
    """Apply ``write`` to the root group of the branch tip and commit it with ``record`` (its
    message and metadata, as versioncube's own commits carry it); return the snapshot id.

    Open the cube anew afterwards: a Cube keeps what it read of its branch between appends.
    """
    session = cube.repository.writable_session(cube.branch)
    write(zarr.open_group(session.store, mode="r+"))
    return session.commit(record.message(), metadata=record.to_metadata())


def drop_last_rows(count: int, append_dim: str = "time") -> Callable[[zarr.Group], None]:
    """A write that deletes the last ``count`` rows along ``append_dim`` from every array."""

    def write(group: zarr.Group) -> None:
        for _, array in group.arrays():
            dims = array.metadata.dimension_names or ()
            if append_dim in dims:
                axis = dims.index(append_dim)
                shape = list(array.shape)
                shape[axis] -= count
                array.resize(tuple(shape))

    return write


def add_to_row(variable: str, row: int, amount: float) -> Callable[[zarr.Group], None]:
    """A write that adds ``amount`` to ``variable`` at ``row`` (a replaced row)."""

    def write(group: zarr.Group) -> None:
        array = group[variable]
        assert isinstance(array, zarr.Array)
        array[row] = array[row] + amount

    return write
