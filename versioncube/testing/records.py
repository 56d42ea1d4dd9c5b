"""A cube whose history holds every kind of commit the history picture, ``log`` and ``diff``
draw apart: a create, appends, a replace, a delete, a tag, a branch head and a gap, all
written by versioncube's own operations."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from versioncube.cube import Cube


def cube_with_every_kind_of_commit(target: str) -> Cube:
    """A cube of 2024-03-01 .. 03-11 by day with 03-06 and 03-07 missing (a gap), grown by
    appends (a create and nine appends, 03-12 among them), tagged ``v1`` at 03-09, a branch
    ``dev`` at 03-11, then one ``write --mode replace`` (03-03 rewritten, ``tas`` + 1) and one
    ``delete`` (03-12 removed): 12 commits."""
    import pandas as pd

    from versioncube.cube import open_cube
    from versioncube.samples import sample_slice

    cube = open_cube(target)
    days = pd.date_range("2024-03-01", periods=12)
    for day in [*days[:5], *days[7:]]:
        cube.append(sample_slice(day, shape=(4, 8)))
    cube.tag("v1", at="~3", message="before the fixes")
    cube.create_branch("dev", at="~1")
    fixed = sample_slice(days[2], shape=(4, 8))
    fixed["tas"] = fixed["tas"] + 1.0
    cube.write(fixed, mode="replace")
    cube.delete("2024-03-12")
    return open_cube(target)
