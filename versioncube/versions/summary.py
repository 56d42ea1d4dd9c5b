"""A one-screen summary of one version of a cube (``versioncube show``).

It reads the version's metadata, its first and last append labels and its list of manifests:
the same cost at the 10th and the 10,000th commit. The storage all versions take together
(every chunk reachable from a branch or tag, and the folder on local disk) is measured only
when asked for (``storage=True``, ``show --storage``): that reads every version's manifests,
so it grows with the history.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path
from typing import Any

import icechunk
import xarray as xr

from versioncube.display.format import format_label, human_size, plural, short_time
from versioncube.display.results import Result
from versioncube.store.containers import referenced_files
from versioncube.store.target import Target
from versioncube.versions.groups import read_groups
from versioncube.versions.record import human_message


@dataclasses.dataclass(frozen=True)
class GroupInfo:
    """One group of a cube of groups (a pyramid's level, a tree's node)."""

    path: str  # as a DataTree path: "/0", "/atmos"
    label: str  # "level 0", "group /atmos"
    dims: dict[str, int]
    variables: dict[str, str]  # name -> "(dims) dtype"


@dataclasses.dataclass(frozen=True)
class CubeInfo(Result):
    """What a version of the cube holds, where it sits in the history, and what it costs."""

    snapshot_id: str
    written_at: dt.datetime
    message: str
    refs: list[str]  # branches and tags (as tag:NAME) pointing at this snapshot
    append_dim: str
    dims: dict[str, int]
    variables: dict[str, str]  # name -> "(dims) dtype"
    first_label: Any
    last_label: Any
    uncompressed_bytes: int
    chunk_refs: int  # chunk references in this version's manifests
    manifests: int  # this version's manifest files
    chunk_bytes: int | None  # chunks reachable from any branch or tag (measured when asked)
    disk_bytes: int | None  # the repository folder on local disk, garbage included (ditto)
    groups: list[GroupInfo] = dataclasses.field(default_factory=list)  # empty: a flat cube
    referenced_files: list[str] = dataclasses.field(default_factory=list)  # virtual chunks'

    def describe(self) -> str:
        refs = f" ({', '.join(self.refs)})" if self.refs else ""
        dims = ", ".join(f"{name}: {size}" for name, size in self.dims.items())
        lines = [
            f"snapshot   {self.snapshot_id}{refs}",
            f"written    {short_time(self.written_at)} UTC: {self.message}",
        ]
        if not self.groups:
            lines.append(f"dims       {dims}")
        if self.first_label is not None:
            lines.append(
                f"{self.append_dim:<10} {format_label(self.first_label)} .. "
                f"{format_label(self.last_label)}"
            )
        alike = len({tuple(group.variables) for group in self.groups}) == 1  # levels are
        if self.groups:
            lines += _group_lines(self.groups, with_variables=not alike)
        width = max(map(len, self.variables), default=0)
        if not self.groups or alike:
            lines += [
                f"variable   {name:<{width}}  {text}" for name, text in self.variables.items()
            ]
        lines.append(f"size       {human_size(self.uncompressed_bytes)} uncompressed")
        lines.append(
            f"chunks     {self.chunk_refs} in {plural(self.manifests, 'manifest')} (this version)"
        )
        if self.chunk_bytes is None:
            lines.append("stored     (all versions: `show --storage` reads every version)")
        else:
            stored = f"stored     {human_size(self.chunk_bytes)} of chunks, all versions"
            if self.disk_bytes is not None:
                stored += f"; {human_size(self.disk_bytes)} on disk"
            lines.append(stored)
        if self.referenced_files:
            folders = sorted({url.rsplit("/", 1)[0] + "/" for url in self.referenced_files})
            lines.append(
                f"references {plural(len(self.referenced_files), 'file')} under "
                f"{', '.join(folders)} (virtual chunks read from there; `versioncube "
                "materialize` copies them into the cube)"
            )
        return "\n".join(lines)

    def html_title(self) -> str:
        return f"Cube version {self.snapshot_id[:12]}"


def describe_version(
    repo: icechunk.Repository,
    target: Target,
    snapshot_id: str,
    append_dim: str,
    refs: list[str],
    *,
    storage: bool = False,
) -> CubeInfo:
    """Summarise a version; ``storage`` also measures what all versions store (slow on long
    histories, see the module docstring)."""
    snapshot = repo.lookup_snapshot(snapshot_id)
    groups = read_groups(
        repo, snapshot_id, where=target.uri, chunks=None, create_default_indexes=False
    )
    dataset = groups.datasets[groups.reference(append_dim)]
    labels = dataset.variables.get(append_dim)
    if labels is not None and labels.size == 0:
        labels = None
    manifests = repo.list_manifest_files(snapshot_id)
    chunk_bytes = disk_bytes = None
    if storage:
        stats = repo.chunk_storage_stats()
        chunk_bytes = stats.native_bytes + stats.inlined_bytes + stats.virtual_bytes
        if target.kind == "local":
            disk_bytes = folder_size(Path(target.location))
    return CubeInfo(
        snapshot_id=snapshot_id,
        written_at=snapshot.written_at,
        message=human_message(snapshot.message),
        refs=refs,
        append_dim=append_dim,
        dims={str(name): size for name, size in dataset.sizes.items()},
        variables=_variables(dataset),
        first_label=labels[0].values[()] if labels is not None else None,
        last_label=labels[-1].values[()] if labels is not None else None,
        uncompressed_bytes=sum(int(group.nbytes) for group in groups.datasets.values()),
        chunk_refs=sum(manifest.num_chunk_refs for manifest in manifests),
        manifests=len(manifests),
        chunk_bytes=chunk_bytes,
        disk_bytes=disk_bytes,
        groups=[
            GroupInfo(
                path="/" + path,
                label=groups.label(path),
                dims={str(name): size for name, size in group.sizes.items()},
                variables=_variables(group),
            )
            for path, group in groups.datasets.items()
            if group.variables
        ]
        if groups.grouped
        else [],
        referenced_files=referenced_files(repo, snapshot_id),
    )


def _variables(dataset: xr.Dataset) -> dict[str, str]:
    return {
        str(name): f"({', '.join(map(str, variable.dims))}) {variable.dtype}"
        for name, variable in sorted(dataset.variables.items())
    }


def _group_lines(groups: list[GroupInfo], with_variables: bool) -> list[str]:
    """Each group: its dims on the first line, its variables below (``with_variables``)."""
    width = max(10, *(len(group.label) + 1 for group in groups))
    lines = []
    for group in groups:
        dims = ", ".join(f"{name}: {size}" for name, size in group.dims.items())
        lines.append(f"{group.label:<{width}} {dims}")
        if not with_variables:
            continue
        names = max(map(len, group.variables), default=0)
        lines += [
            f"{'':<{width}}   {name:<{names}}  {text}" for name, text in group.variables.items()
        ]
    return lines


def folder_size(folder: Path) -> int:
    """Bytes in all files below ``folder``."""
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(folder)
        for name in names
    )
