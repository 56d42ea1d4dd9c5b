"""Compressors and filters from the configuration, as Zarr v3 codecs.

zappend configurations name numcodecs codecs, ``{id: blosc, cname: zstd, clevel: 5}``; Icechunk
stores Zarr v3, whose codecs differ. Each ``{id: ...}`` becomes its Zarr v3 counterpart: blosc,
zstd, gzip and crc32c are native Zarr v3 codecs, any other numcodecs id runs through zarr's
numcodecs wrappers (``zarr.codecs.numcodecs``). Zarr v3 codecs can be named directly as well:
``{name: zstd, configuration: {level: 5}}``.

Zarr v2 ran filters before the compressor on any data; Zarr v3 separates array filters (delta,
...) from byte filters (shuffle, ...), which belong in the compressor list. Byte filters are
therefore put in front of the compressors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from versioncube.errors import ConfigError

_BLOSC_SHUFFLE = {-1: "shuffle", 0: "noshuffle", 1: "shuffle", 2: "bitshuffle"}


def codec_encoding(settings: Mapping[str, Any], path: str) -> dict[str, Any]:
    """xarray encoding (``compressors``, ``filters``) for a variable's configured codecs.

    ``settings`` is the variable's encoding settings, ``path`` their key path for messages.
    """
    from zarr.abc.codec import ArrayArrayCodec

    encoding: dict[str, Any] = {}
    if "compressors" in settings:
        encoding["compressors"] = _codecs(settings["compressors"], f"{path}.compressors")
    elif "compressor" in settings:
        compressor = settings["compressor"]
        codec = None if compressor is None else _codec(compressor, f"{path}.compressor")
        encoding["compressors"] = None if codec is None else [codec]
    if settings.get("filters"):
        filters = _codecs(settings["filters"], f"{path}.filters") or []
        array_filters = [codec for codec in filters if isinstance(codec, ArrayArrayCodec)]
        byte_filters = [codec for codec in filters if not isinstance(codec, ArrayArrayCodec)]
        encoding["filters"] = array_filters or None
        if byte_filters:
            compressors = encoding.get("compressors", [default_compressor()]) or []
            encoding["compressors"] = byte_filters + list(compressors)
    elif "filters" in settings:
        encoding["filters"] = None
    return encoding


def _codecs(specs: list[Mapping[str, Any]] | None, path: str) -> list[Any] | None:
    if specs is None:
        return None
    return [_codec(spec, f"{path}[{index}]") for index, spec in enumerate(specs)]


def _codec(spec: Mapping[str, Any], path: str) -> Any:
    """One codec from numcodecs-style ``{id: ...}`` or Zarr v3 ``{name: ..., configuration}``."""
    from zarr.registry import get_codec_class

    try:
        if "name" in spec:
            return get_codec_class(spec["name"]).from_dict(dict(spec))
        if "id" in spec:
            options = {key: value for key, value in spec.items() if key != "id"}
            return _from_numcodecs(str(spec["id"]), options)
    except (KeyError, TypeError, ValueError) as error:
        reason = str(error).strip("'\"").split(". ")[0]
        raise ConfigError(
            f"configuration key {path!r}: invalid codec {dict(spec)!r}: {reason}"
        ) from None
    raise ConfigError(
        f"configuration key {path!r} must name its codec: numcodecs-style {{id: zstd, ...}} or "
        f"Zarr v3 {{name: zstd, configuration: {{...}}}}, found {dict(spec)!r}"
    )


def _from_numcodecs(codec_id: str, options: dict[str, Any]) -> Any:
    from zarr import codecs
    from zarr.registry import get_codec_class

    if codec_id == "blosc":
        shuffle = options.pop("shuffle", 1)
        options["shuffle"] = _BLOSC_SHUFFLE.get(shuffle, shuffle)
        options.setdefault("cname", "lz4")  # numcodecs' defaults, which zappend users rely on
        options.setdefault("clevel", 5)
        return codecs.BloscCodec(**options)
    if codec_id == "zstd":
        options.setdefault("level", 0)
        return codecs.ZstdCodec(**options)
    if codec_id == "gzip":
        options.setdefault("level", 1)
        return codecs.GzipCodec(**options)
    if codec_id == "crc32c":
        return codecs.Crc32cCodec(**options)
    return get_codec_class(f"numcodecs.{codec_id}")(**options)


def default_compressor() -> Any:
    """versioncube's default compressor: Blosc lz4 with byte shuffling (zarr 2's default).

    Also used after byte filters configured without a compressor.
    """
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
