"""Commits written with Icechunk directly, carrying a versioncube record of any operation.

The history picture, ``log`` and ``diff`` read commits by their record's operation and label
range. Operations that are not built yet (updates, deletes) are tested with commits made here:
a real change to the cube's arrays, committed with the record such an operation would write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import zarr

from versioncube.versions.record import CommitRecord

if TYPE_CHECKING:
    from versioncube.cube import Cube


def commit_record(cube: Cube, record: CommitRecord, write: Callable[[zarr.Group], None]) -> str:
    """Apply ``write`` to the root group of the branch tip and commit it with ``record`` (its
    message with its trailer line, as versioncube's own commits carry it); return the
    snapshot id.

    Open the cube anew afterwards: a Cube keeps what it read of its branch between appends.
    """
    session = cube.repository.writable_session(cube.branch)
    write(zarr.open_group(session.store, mode="r+"))
    return session.commit(f"{record.message()}\n\n{record.trailer()}")


def drop_last_rows(count: int, append_dim: str = "time") -> Callable[[zarr.Group], None]:
    """A write that deletes the last ``count`` rows along ``append_dim`` from every array."""

    def write(group: zarr.Group) -> None:
        for _, array in group.arrays():
            dims = getattr(array.metadata, "dimension_names", None) or ()
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
        array[row] = np.asarray(array[row]) + amount

    return write


def cube_with_every_kind_of_commit(target: str) -> Cube:
    """A cube of 2024-03-01 .. 03-11 by day with 03-06 and 03-07 missing (a gap), grown by
    appends (a create and nine appends, 03-12 among them), tagged ``v1`` at 03-09, a branch
    ``dev`` at 03-11, then one replace (03-03 rewritten) and one delete (03-12 removed), each
    committed with the record such an operation writes: 12 commits."""
    import pandas as pd

    from versioncube.cube import open_cube
    from versioncube.samples import sample_slice

    cube = open_cube(target)
    days = pd.date_range("2024-03-01", periods=12)
    for day in [*days[:5], *days[7:]]:
        cube.append(sample_slice(day, shape=(4, 8)))
    cube.tag("v1", at="~3", message="before the fixes")
    cube.create_branch("dev", at="~1")
    replace = CommitRecord("replace", None, "fix", "time", (2, 3), ("2024-03-03", "2024-03-03"))
    commit_record(cube, replace, add_to_row("tas", 2, 1.0))
    delete = CommitRecord("delete", None, "", "time", (9, 10), ("2024-03-12", "2024-03-12"))
    commit_record(cube, delete, drop_last_rows(1))
    return open_cube(target)
