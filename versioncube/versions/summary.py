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

from versioncube.display.format import format_label, human_size, plural, short_time
from versioncube.display.results import Result
from versioncube.store.dataset import open_version
from versioncube.store.target import Target
from versioncube.versions.record import human_message


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

    def describe(self) -> str:
        refs = f" ({', '.join(self.refs)})" if self.refs else ""
        dims = ", ".join(f"{name}: {size}" for name, size in self.dims.items())
        lines = [
            f"snapshot   {self.snapshot_id}{refs}",
            f"written    {short_time(self.written_at)} UTC: {self.message}",
            f"dims       {dims}",
        ]
        if self.first_label is not None:
            lines.append(
                f"{self.append_dim:<10} {format_label(self.first_label)} .. "
                f"{format_label(self.last_label)}"
            )
        width = max(map(len, self.variables), default=0)
        lines += [f"variable   {name:<{width}}  {text}" for name, text in self.variables.items()]
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
    dataset = open_version(
        repo, snapshot_id, where=target.uri, chunks=None, create_default_indexes=False
    )
    labels = dataset.variables.get(append_dim)
    has_labels = labels is not None and labels.size > 0
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
        variables={
            str(name): f"({', '.join(map(str, variable.dims))}) {variable.dtype}"
            for name, variable in sorted(dataset.variables.items())
        },
        first_label=labels[0].values[()] if has_labels else None,
        last_label=labels[-1].values[()] if has_labels else None,
        uncompressed_bytes=int(dataset.nbytes),
        chunk_refs=sum(manifest.num_chunk_refs for manifest in manifests),
        manifests=len(manifests),
        chunk_bytes=chunk_bytes,
        disk_bytes=disk_bytes,
    )


def folder_size(folder: Path) -> int:
    """Bytes in all files below ``folder``."""
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(folder)
        for name in names
    )
