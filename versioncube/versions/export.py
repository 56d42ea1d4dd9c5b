"""Export a version of the cube as a plain Zarr store, for readers that cannot open Icechunk.

zappend's consumers read its target with ``xr.open_zarr(target_dir)``: a Zarr v2 folder with
consolidated metadata. ``versioncube export`` writes any version in that form (or as Zarr v3),
through plain xarray from :func:`~versioncube.store.dataset.open_version`, chunk by chunk: the
variables keep their chunks, CF encodings (time units, packing, fill values) and codecs. For
Zarr v2, each Zarr v3 codec becomes its numcodecs counterpart (blosc, zstd, gzip and the
numcodecs codecs; shards are dropped, as v2 has none).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import icechunk

from versioncube.display import html
from versioncube.display.format import format_label, plural
from versioncube.display.results import Result
from versioncube.errors import DestinationExistsError
from versioncube.store.dataset import open_version

ZarrFormat = Literal[2, 3]

#: Encoding keys that say how values are stored, kept in any format.
_CF_KEYS = ("dtype", "units", "calendar", "_FillValue", "missing_value", "scale_factor",
            "add_offset", "chunks")  # fmt: skip
#: Zarr v3 codec keys, kept as they are for Zarr v3 exports.
_V3_KEYS = ("compressors", "filters", "serializer", "shards")
_BLOSC_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


@dataclasses.dataclass(frozen=True)
class ExportResult(Result):
    """What an export wrote: which version, where, in which format."""

    destination: str
    version: str
    snapshot_id: str
    zarr_format: int
    consolidated: bool
    variables: list[str]
    append_dim: str
    first_label: Any
    last_label: Any

    def describe(self) -> str:
        """``exported main (snapshot X) to out.zarr as Zarr v2 with consolidated metadata: ...``"""
        metadata = " with consolidated metadata" if self.consolidated else ""
        text = (
            f"exported {self.version} (snapshot {self.snapshot_id}) to {self.destination} as "
            f"Zarr v{self.zarr_format}{metadata}: {plural(len(self.variables), 'variable')}"
        )
        if self.first_label is not None:
            text += f", {self.append_dim} {self.label_span()}"
        return text

    def label_span(self) -> str:
        """``2024-03-01 .. 2024-03-05`` (one label alone when the cube has one row)."""
        first, last = format_label(self.first_label), format_label(self.last_label)
        return first if first == last else f"{first} .. {last}"

    def html_title(self) -> str:
        return "Export"

    def _repr_html_(self) -> str:
        metadata = " with consolidated metadata" if self.consolidated else ""
        details: list[tuple[str, object]] = [
            ("version", f"{self.version} (snapshot {self.snapshot_id})"),
            ("written to", self.destination),
            ("format", f"Zarr v{self.zarr_format}{metadata}"),
            (
                "variables",
                f"{plural(len(self.variables), 'variable')}: {', '.join(self.variables)}",
            ),
        ]
        if self.first_label is not None:
            details.append((self.append_dim, self.label_span()))
        return html.card(self.html_kind(), "export", self.destination, html.facts(details))


def export_version(
    repo: icechunk.Repository,
    snapshot_id: str,
    destination: str,
    *,
    version: str,
    append_dim: str,
    where: str,
    zarr_format: ZarrFormat = 3,
    consolidated: bool = False,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> ExportResult:
    """Write the version at ``snapshot_id`` to ``destination`` (a path or fsspec URL) as a plain
    Zarr store; a destination that holds anything is refused unless ``overwrite``."""
    if not overwrite:
        _refuse_non_empty(destination, storage_options or {})
    dataset = open_version(repo, snapshot_id, where=where, chunks={})
    plain = dataset.copy(deep=False)
    for variable in plain.variables.values():
        variable.encoding = plain_encoding(variable.encoding, zarr_format)
    with warnings.catch_warnings():
        # asked for: consolidated metadata in Zarr v3, which zarr warns is no part of the spec
        warnings.filterwarnings("ignore", "Consolidated metadata is currently not part")
        plain.to_zarr(
            destination,
            mode="w" if overwrite else "w-",
            zarr_format=zarr_format,
            consolidated=consolidated,
            storage_options=dict(storage_options) if storage_options else None,
        )
    labels = dataset.variables.get(append_dim)
    first = last = None
    if labels is not None and labels.size > 0:
        first, last = labels[0].values[()], labels[-1].values[()]
    return ExportResult(
        destination=destination,
        version=version,
        snapshot_id=snapshot_id,
        zarr_format=zarr_format,
        consolidated=consolidated,
        variables=sorted(map(str, dataset.variables)),
        append_dim=append_dim,
        first_label=first,
        last_label=last,
    )


def plain_encoding(encoding: Mapping[str, Any], zarr_format: ZarrFormat) -> dict[str, Any]:
    """A cube variable's encoding for a plain Zarr store of ``zarr_format``."""
    kept = {key: encoding[key] for key in _CF_KEYS if key in encoding}
    if zarr_format == 3:
        kept.update({key: encoding[key] for key in _V3_KEYS if key in encoding})
        return kept
    kept["filters"] = _v2_codecs(encoding.get("filters") or ())
    compressors = _v2_codecs(encoding.get("compressors") or ())
    kept["compressors"] = compressors or None
    return kept


def _v2_codecs(codecs: Any) -> tuple[Any, ...] | None:
    """Zarr v3 codecs as their numcodecs (Zarr v2) counterparts; None for codecs without one
    (the store's default is used instead)."""
    import numcodecs

    translated = []
    for codec in codecs:
        config = codec.to_dict() if hasattr(codec, "to_dict") else {}
        name, options = config.get("name"), dict(config.get("configuration") or {})
        if name == "blosc":
            shuffle = _BLOSC_SHUFFLE.get(options.pop("shuffle", "shuffle"), 1)
            options.pop("typesize", None)
            translated.append(numcodecs.Blosc(shuffle=shuffle, **options))
        elif name == "zstd":
            options.pop("checksum", None)
            translated.append(numcodecs.Zstd(**options))
        elif name == "gzip":
            translated.append(numcodecs.GZip(**options))
        elif hasattr(codec, "codec_config"):  # zarr's wrapper of a numcodecs codec
            translated.append(numcodecs.get_codec(dict(codec.codec_config)))
        else:
            return None
    return tuple(translated)


def _refuse_non_empty(destination: str, storage_options: Mapping[str, Any]) -> None:
    import fsspec

    fs, path = fsspec.core.url_to_fs(destination, **storage_options)
    if fs.exists(path) and (not fs.isdir(path) or fs.ls(path)):
        raise DestinationExistsError(
            f"export destination {destination} is not empty; give an empty or new location, "
            "or overwrite it to replace what is there"
        )
