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

from versioncube.display import html
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
        lines = [
            f"snapshot   {self.snapshot_id}{refs}",
            f"written    {short_time(self.written_at)} UTC: {self.message}",
        ]
        if not self.groups:
            lines.append(f"dims       {self.dims_text()}")
        if self.first_label is not None:
            lines.append(f"{self.append_dim:<10} {self.labels_text()}")
        alike = self.groups_alike()
        if self.groups:
            lines += _group_lines(self.groups, with_variables=not alike)
        width = max(map(len, self.variables), default=0)
        if not self.groups or alike:
            lines += [
                f"variable   {name:<{width}}  {text}" for name, text in self.variables.items()
            ]
        lines.append(f"size       {self.size_text()}")
        lines.append(f"chunks     {self.chunks_text()}")
        lines.append(f"stored     {self.stored_text()}")
        if self.referenced_files:
            lines.append(f"references {self.references_text()}")
        return "\n".join(lines)

    def dims_text(self) -> str:
        """``time: 5, lat: 6, lon: 12``."""
        return _dims_text(self.dims)

    def labels_text(self) -> str:
        """``2024-02-01 .. 2024-02-05``: the first and last append labels."""
        return f"{format_label(self.first_label)} .. {format_label(self.last_label)}"

    def size_text(self) -> str:
        return f"{human_size(self.uncompressed_bytes)} uncompressed"

    def chunks_text(self) -> str:
        """``24 in 3 manifests (this version)``."""
        return f"{self.chunk_refs} in {plural(self.manifests, 'manifest')} (this version)"

    def stored_text(self) -> str:
        if self.chunk_bytes is None:
            return "(all versions: `show --storage` reads every version)"
        stored = f"{human_size(self.chunk_bytes)} of chunks, all versions"
        if self.disk_bytes is not None:
            stored += f"; {human_size(self.disk_bytes)} on disk"
        return stored

    def references_text(self) -> str:
        folders = sorted({url.rsplit("/", 1)[0] + "/" for url in self.referenced_files})
        return (
            f"{plural(len(self.referenced_files), 'file')} under {', '.join(folders)} (virtual "
            "chunks read from there; `versioncube materialize` copies them into the cube)"
        )

    def groups_alike(self) -> bool:
        """Whether every group has the same variables (the levels of a pyramid do)."""
        return len({tuple(group.variables) for group in self.groups}) == 1

    def html_title(self) -> str:
        return f"Cube version {self.snapshot_id[:12]}"

    def _repr_html_(self) -> str:
        refs = html.muted(f"({', '.join(self.refs)})") if self.refs else ""
        return html.card(
            self.html_kind(), f"version {self.snapshot_id[:12]}", refs, *self.html_sections()
        )

    def html_sections(self) -> list[str]:
        """The version's facts as HTML sections (also the body of a Cube's HTML form)."""
        written = f"{short_time(self.written_at)} UTC: {self.message}"
        version = [("snapshot", self.snapshot_id), ("written", written)]
        if self.refs:
            version.append(("refs", ", ".join(self.refs)))
        parts: list[str] = [html.facts(version)]
        if not self.groups:
            parts.append(html.section("Dimensions", self.dims_text(), count=len(self.dims)))
        if self.first_label is not None:
            parts.append(html.section("Labels", f"{self.append_dim} {self.labels_text()}"))
        if self.groups:
            groups = [
                (group.label, _dims_text(group.dims), ", ".join(group.variables))
                for group in self.groups
            ]
            table = html.table(("group", "dims", "variables"), groups)
            parts.append(html.section("Groups", table, count=len(self.groups)))
        if not self.groups or self.groups_alike():
            variables = [(html.code(name), text) for name, text in self.variables.items()]
            table = html.table(("name", "dims and type"), variables)
            parts.append(html.section("Variables", table, count=len(self.variables)))
        size = [
            ("size", self.size_text()),
            ("chunks", self.chunks_text()),
            ("stored", self.stored_text()),
        ]
        parts.append(html.section("Size", html.facts(size)))
        if self.referenced_files:
            files = html.lines([self.references_text(), *self.referenced_files])
            parts.append(
                html.section("References", files, count=len(self.referenced_files), open=False)
            )
        return parts


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


def _dims_text(dims: dict[str, int]) -> str:
    return ", ".join(f"{name}: {size}" for name, size in dims.items())


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
        lines.append(f"{group.label:<{width}} {_dims_text(group.dims)}")
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
