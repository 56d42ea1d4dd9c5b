"""Compressors and filters from the configuration, as Zarr v3 codecs.

zappend configurations name numcodecs codecs, ``{id: blosc, cname: zstd, clevel: 5}``; Icechunk
stores Zarr v3, whose codecs differ. Each ``{id: ...}`` becomes its Zarr v3 counterpart: blosc,
zstd, gzip and crc32c are native Zarr v3 codecs, any other numcodecs id runs through zarr's
numcodecs wrappers (``zarr.codecs.numcodecs``). Zarr v3 codecs can be named directly as well:
``{name: zstd, configuration: {level: 5}}``.

Zarr v2 ran filters before the compressor on any data; Zarr v3 separates array filters (delta,
...) from byte filters (shuffle, ...), which belong in the compressor list. Byte filters are
therefore put in front of the compressors.

A slice's own codecs are translated the same way (:func:`slice_codec_encoding`): a Zarr v2 slice
carries numcodecs objects, which a Zarr v3 array cannot take. A codec without a Zarr v3
counterpart is replaced by the cube's default compressor (or dropped, for a filter), and the
log says so; the variable-length codecs of v2 string arrays are dropped silently, as Zarr v3
implies them from the data type.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from versioncube.errors import ConfigError

logger = logging.getLogger(__name__)

#: numcodecs ids that Zarr v3 implies from the data type (v2 string and object arrays)
_IMPLIED_BY_DTYPE = frozenset({"vlen-utf8", "vlen-bytes", "vlen-array"})

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


def slice_codec_encoding(name: str, encoding: Mapping[str, Any]) -> dict[str, Any]:
    """Encoding updates that turn a slice variable's numcodecs (Zarr v2) codecs into Zarr v3
    ones, or {} when it has none (see the module docstring)."""
    filters = _as_list(encoding.get("filters"))
    compressors = _as_list(encoding.get("compressors", encoding.get("compressor")))
    if not any(_is_numcodecs(codec) for codec in [*filters, *compressors]):
        return {}
    from zarr.abc.codec import ArrayArrayCodec

    translated_filters = [_translated(name, codec, "filter") for codec in filters]
    translated = [_translated(name, codec, "compressor") for codec in compressors]
    if compressors and any(codec is None for codec in translated):
        translated = [default_compressor()]
    codecs = [codec for codec in [*translated_filters, *translated] if codec is not None]
    array_filters = [codec for codec in codecs if isinstance(codec, ArrayArrayCodec)]
    byte_codecs = [codec for codec in codecs if not isinstance(codec, ArrayArrayCodec)]
    return {"filters": tuple(array_filters), "compressors": tuple(byte_codecs)}


def _translated(name: str, codec: Any, role: str) -> Any:
    """A Zarr v3 codec for one of a slice's codecs, or None (dropped, with a log line)."""
    if not _is_numcodecs(codec):
        return codec
    config = dict(codec.get_config())
    codec_id = str(config.pop("id"))
    if codec_id in _IMPLIED_BY_DTYPE:
        return None
    try:
        return _from_numcodecs(codec_id, config)
    except (KeyError, TypeError, ValueError) as error:
        instead = "its default compressor instead" if role == "compressor" else "no filter"
        logger.warning(
            "variable %r: the slice's %s %r has no Zarr v3 counterpart (%s); the cube uses %s",
            name, role, codec_id, str(error).strip("'\"").split(". ")[0], instead,
        )  # fmt: skip
        return None


def _as_list(codecs: Any) -> list[Any]:
    if codecs is None:
        return []
    if isinstance(codecs, Sequence) and not isinstance(codecs, str):
        return list(codecs)
    return [codecs]


def _is_numcodecs(codec: Any) -> bool:
    """Whether ``codec`` is a numcodecs (Zarr v2) codec rather than a Zarr v3 one."""
    import numcodecs.abc

    return isinstance(codec, numcodecs.abc.Codec)
