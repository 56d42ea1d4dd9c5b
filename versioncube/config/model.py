"""The settings model: every setting is declared once, in :class:`Config`.

Validation (unknown keys with a did-you-mean, wrong types and values named by their full key
path such as ``variables.tas.encoding.chunks``, see :mod:`versioncube.config.checking`), typed
access and the generated reference (``--help-config``, docs/configuration.md, see
:mod:`versioncube.config.reference`) all come from that one declaration: a field's type hint is
its schema, nested mappings are ``TypedDict``s whose keys carry their help text in
``Annotated[...]``. Keys follow zappend's names so existing configuration files keep working.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, TypedDict

from versioncube.config.append_step import AppendStep
from versioncube.config.checking import POSITIVE, Because, Rule, check_mapping, type_name


def _valid_append_step(value: Any) -> bool:
    try:
        AppendStep.parse(value)
    except ValueError:
        return False
    return True


APPEND_STEP = Rule(
    _valid_append_step,
    'null, "+", "-", a non-zero time delta such as "1D", "-6h", "30m", "1M" (a count and a '
    "numpy unit: Y, M, W, D, h, m, s, ms, us, ns) or a non-zero number",
)

LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET"]
StorageDtype = Literal[
    "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"
]  # fmt: skip
#: One compressor or filter: numcodecs-style ``{id: zstd, level: 5}`` (zappend) or Zarr v3
#: ``{name: zstd, configuration: {level: 5}}``.
Codec = dict[str, Any]
Sizes = list[Annotated[int, POSITIVE] | None] | None


class EncodingSettings(TypedDict, total=False):
    """How one variable is stored (zappend's ``variables.NAME.encoding``)."""

    dtype: Annotated[
        StorageDtype,
        "Storage data type; values are converted (packed, with scale_factor/add_offset) on write.",
    ]
    chunks: Annotated[
        Sizes,
        "Chunk size per dimension; a null entry means the dimension's whole length in the first "
        "slice, null means one chunk for the whole first slice.",
    ]
    chunksizes: Annotated[Sizes, "NetCDF's name for chunks (used when chunks is not given)."]
    shards: Annotated[
        Sizes,
        "Beyond zappend: Zarr v3 shard size per dimension, a multiple of the chunk size; each "
        "shard is one stored object holding many chunks (null entries as for chunks).",
    ]
    fill_value: Annotated[
        int | float | Literal["NaN"] | None,
        'Stored value that marks missing data, in the storage dtype ("NaN" for floats, null for '
        "none).",
    ]
    _FillValue: Annotated[
        int | float | Literal["NaN"] | None, "xarray's name for fill_value (used when it is not)."
    ]
    scale_factor: Annotated[
        float, "Packing: memory value = scale_factor * stored value + add_offset."
    ]
    add_offset: Annotated[float, "Packing offset, see scale_factor."]
    units: Annotated[str, 'Storage units of a datetime variable, e.g. "hours since 2000-01-01".']
    calendar: Annotated[str, 'Calendar of a datetime variable, e.g. "proleptic_gregorian".']
    compressor: Annotated[
        Codec | None,
        "One compressor, numcodecs-style as in zappend ({id: blosc, cname: zstd, clevel: 5}) "
        "or a Zarr v3 codec ({name: zstd, configuration: {level: 5}}); null: no compression.",
    ]
    compressors: Annotated[
        list[Codec] | None, "Beyond zappend: Zarr v3's list of compressors, applied in order."
    ]
    filters: Annotated[
        list[Codec] | None,
        "Filters (same forms as compressor); byte filters such as shuffle run before the "
        "compressor, as in Zarr v2.",
    ]


class VariableSettings(TypedDict, total=False):
    """One variable of the cube (zappend's ``variables.NAME``; ``"*"`` applies to all)."""

    dims: Annotated[
        list[str],
        "The variable's dimensions in order; a slice with others is refused, and a configured "
        "variable missing from a slice is created with them.",
    ]
    encoding: Annotated[EncodingSettings, "How the variable is stored."]
    attrs: Annotated[dict[str, Any], "Extra attributes of the variable."]


class PollingSettings(TypedDict, total=False):
    """How long to wait for slices that are not there yet."""

    interval: Annotated[float, POSITIVE, "Seconds between attempts (default 2)."]
    timeout: Annotated[float, POSITIVE, "Seconds to wait before failing (default 60)."]


class ProfilingSettings(TypedDict, total=False):
    """What to profile and where the report goes."""

    enabled: Annotated[bool, "Profile the run (default true)."]
    path: Annotated[str, "A file to write the report to."]
    log_level: Annotated[LogLevel, 'Level at which the report is logged ("NOTSET": not logged).']
    keys: Annotated[list[str], "pstats sort keys, e.g. tottime, cumulative (default tottime)."]
    restrictions: Annotated[
        list[int | float | str], "pstats print restrictions: a count, a fraction or a pattern."
    ]


AggMethod = Literal["auto", "first", "min", "max", "mean", "median", "mode"]


class LevelsSettings(TypedDict, total=False):
    """A multi-level pyramid (xcube's levels): every append writes each level in one commit."""

    num_levels: Annotated[
        Annotated[int, POSITIVE] | Literal["auto"],
        'How many levels, level 0 included; "auto" (the default): halve until the coarsest '
        "level fits one tile.",
    ]
    tile_size: Annotated[
        Annotated[int, POSITIVE] | list[Annotated[int, POSITIVE]],
        "Tile width and height in pixels ([w, h] or one number, default 256): the spatial chunk "
        "size of every level, and what auto counts levels with.",
    ]
    agg_methods: Annotated[
        AggMethod | dict[str, AggMethod],
        "How a level aggregates each variable (one method, or variable names and patterns -> "
        'method): "first" (every 2^k-th pixel), "mean", "median", "min", "max", "mode"; '
        '"auto" (default): first for integers, mean otherwise.',
    ]
    xy_dims: Annotated[
        list[str],
        "The spatial dimensions [x, y] that levels downsample (default: the first of x/y, "
        "lon/lat, longitude/latitude found).",
    ]


POLLING_DEFAULTS: PollingSettings = {"interval": 2.0, "timeout": 60.0}

Category = Literal["target", "outline", "slices", "run", "unneeded"]
CATEGORIES: dict[Category, str] = {
    "target": "Target",
    "outline": "Target outline (stored with the cube when it is created)",
    "slices": "Slices",
    "run": "Run",
    "unneeded": "Accepted for zappend compatibility, not needed with Icechunk",
}


def _setting(default: Any, help: str, category: Category) -> Any:
    """Declare one setting: its default, the help shown in the reference and its section."""
    metadata = {"help": help, "category": category}
    if isinstance(default, dict | list):
        return dataclasses.field(default_factory=type(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """All settings of an append run (zappend's keys plus versioncube's own)."""

    version: Literal[1] = _setting(1, "Version of the configuration format.", "run")
    zarr_version: Annotated[
        Literal[3],
        Because(
            "Icechunk stores Zarr format 3 only (zappend's default 2 cannot be used: remove the "
            "setting or set it to 3)"
        ),
    ] = _setting(3, "Zarr format of the cube: Icechunk stores Zarr v3 data.", "target")
    target_dir: str | None = _setting(
        None,
        "Where the cube lives: a local path or file:// URI, memory://NAME, s3://bucket/prefix, "
        "gs://bucket/prefix or az://container/prefix.",
        "target",
    )
    target_storage_options: dict[str, Any] = _setting(
        {},
        "Options for the target's storage: endpoint_url, region, allow_http, credentials, ... "
        "(per cloud: docs/targets.md).",
        "target",
    )
    target_branch: str = _setting(
        "main", "The branch of the cube's repository to append to.", "target"
    )
    force_new: bool = _setting(
        False,
        "Start the cube afresh with the first slice of this run, as a new commit on the "
        "branch: the old content stays in the history (unlike zappend, this can be undone).",
        "target",
    )
    append_dim: str | None = _setting(
        None,
        "The dimension along which slices are appended (default: the cube's own, or time).",
        "outline",
    )
    append_step: Annotated[str | int | float | None, APPEND_STEP] = _setting(
        None,
        "How append labels must follow each other, within a slice and after the cube's last "
        'label: null or "+" (increasing), "-" (decreasing), a time delta such as "1D" or '
        '"-6h", a calendar step "1M" or "1Y" (each label in the next month or year; the day '
        "within it may vary, as for mid-month labels), or a number (a number of seconds for "
        "time labels).",
        "outline",
    )
    fixed_dims: dict[str, Annotated[int, POSITIVE]] = _setting(
        {},
        "Sizes that every slice must have, by dimension name (not the append dimension).",
        "outline",
    )
    included_variables: list[str] = _setting(
        [],
        "The variables to write (default: all of the slice's plus the configured ones).",
        "outline",
    )
    excluded_variables: list[str] = _setting(
        [], "Variables to leave out of every slice.", "outline"
    )
    variables: dict[str, VariableSettings] = _setting(
        {},
        'Dimensions, encoding and attributes per variable name; "*" gives defaults for all '
        "variables, merged with each variable's own settings.",
        "outline",
    )
    attrs: dict[str, Any] = _setting(
        {},
        "Extra global attributes, applied after every append; with permit_eval, "
        '"{{ expression }}" values are computed over the whole cube (ds) after each append.',
        "outline",
    )
    attrs_update_mode: Literal["keep", "replace", "update", "ignore"] = _setting(
        "keep",
        "How slice attributes become cube attributes: keep the first slice's, replace them by "
        "the last slice's, update them with the last slice's, or ignore slice attributes.",
        "outline",
    )
    write_mode: Literal["append", "upsert", "time_series", "replace", "insert"] = _setting(
        "append",
        "How `write` (and Cube.write) places a slice by its append labels: append (after the "
        "last label, strictly), upsert (overwrite labels the cube has, insert the others in "
        "order), time_series (replace every label within the slice's first..last), replace "
        "(existing labels only; no row moves) or insert (new labels only). See docs/updates.md.",
        "run",
    )
    permit_eval: bool = _setting(
        False,
        'Evaluate "{{ expression }}" attribute values as Python expressions (trusted '
        "configurations only).",
        "outline",
    )
    levels: Annotated[int, POSITIVE] | Literal["auto"] | LevelsSettings | None = _setting(
        None,
        "Make the cube a multi-level pyramid for map viewers (xcube's levels): a number of levels, "
        '"auto", or {num_levels, tile_size, agg_methods, xy_dims}. Every append writes level 0 '
        "and each downsampled level (groups 0, 1, ...) in one commit, with xcube's .zlevels "
        "keys in the root attributes (see docs/pyramids-and-groups.md).",
        "outline",
    )
    virtual: bool = _setting(
        False,
        "Append each slice file (NetCDF3, NetCDF4/HDF5, GRIB; local or s3://) as references "
        "to its chunks instead of copying its values: one commit of references per file, "
        "checked so that it never reads back wrong (docs/virtual.md).",
        "slices",
    )
    virtual_group: str | None = _setting(
        None,
        "With virtual: the group of each file to reference (an HDF5 group, or a GRIB group "
        'such as "isobar/instant" when a GRIB file holds several kinds of messages); for a '
        "pyramid, its level 0. Without it, a file with groups starts a tree that references "
        "every group (a tree takes no virtual_group).",
        "slices",
    )
    virtual_containers: list[str] = _setting(
        [],
        "With virtual: URL prefixes (or folders) under which referenced files live, one "
        "virtual chunk container each; a file outside all of them gets a container for its "
        "own folder.",
        "target",
    )
    virtual_credentials: dict[str, Any] = _setting(
        {},
        'How to read referenced files, by container prefix: "local", "env", "anonymous", or '
        "S3 keys {access_key_id, secret_access_key}; local folders and environment "
        "credentials the cube set up are authorised without it.",
        "target",
    )
    slice_engine: str | None = _setting(
        None,
        "The xarray engine that opens slice files (detected from the file when not set).",
        "slices",
    )
    slice_storage_options: dict[str, Any] = _setting(
        {}, "fsspec options for opening slices given as URIs (s3://, https://, ...).", "slices"
    )
    slice_polling: bool | PollingSettings = _setting(
        False,
        "Wait for slice files that are not there (or not readable) yet: false (fail at once), "
        "true (every 2 s for up to 60 s) or {interval, timeout} in seconds.",
        "slices",
    )
    slice_source: str | Callable[..., Any] | None = _setting(
        None,
        "A function, context manager or class (or its dotted name, module.name) called with "
        "each slice item to provide the slice: a tuple item is (args, kwargs), a list args, a "
        "dict kwargs; a parameter named ctx receives the run's context (ctx.config).",
        "slices",
    )
    slice_source_kwargs: dict[str, Any] = _setting(
        {}, "Extra keyword arguments for slice_source (a slice item's own kwargs win).", "slices"
    )
    persist_mem_slices: bool = _setting(
        False,
        "Write in-memory slices to a temporary Zarr (in temp_dir) and append from there, so "
        "that expensive dask computations run once.",
        "slices",
    )
    extra: dict[str, Any] = _setting(
        {}, "Free-form settings for slice sources (ctx.config.extra).", "slices"
    )
    on_conflict: Literal["retry", "fail"] = _setting(
        "retry",
        "When another writer commits first: retry on the new tip (re-checking and re-validating "
        "the slice), or fail.",
        "run",
    )
    max_retries: int = _setting(
        20,
        "How many times to retry a conflicting commit, with jittered exponential backoff.",
        "run",
    )
    dry_run: bool = _setting(
        False, "Validate every slice and report what would be committed, but write nothing.", "run"
    )
    dask_scheduler: str | None = _setting(
        None,
        "Write on this dask cluster: a scheduler address such as tcp://host:8786 (a hand-started "
        "dask scheduler, dask-jobqueue, ...); an active distributed.Client is used without it "
        "(docs/distributed.md).",
        "run",
    )
    dask_workers: Annotated[int, POSITIVE] | None = _setting(
        None,
        "Start a local dask cluster (LocalCluster) of this many worker processes, one thread "
        "each, for the run, and write on it (ignored when dask_scheduler is set).",
        "run",
    )
    memory_limit: str | Annotated[int, POSITIVE] | None = _setting(
        None,
        'Memory per dask worker, as bytes or "2GiB": the limit of the workers versioncube '
        "starts, and what a big slice's chunks are checked against (default: the workers' own "
        "limit).",
        "run",
    )
    parallel: bool = _setting(
        False,
        "With a dask cluster: open, check and write the next slices on the workers while the "
        "client commits them in order, one commit per slice (docs/distributed.md).",
        "run",
    )
    logging: bool | LogLevel | dict[str, Any] | None = _setting(
        None,
        "Logging during the run: true (INFO to stderr), a level name, or a logging.config "
        "dictionary (the package's logger is named versioncube).",
        "run",
    )
    profiling: bool | str | ProfilingSettings | None = _setting(
        None,
        "Profile the run with cProfile: true (report logged at INFO), a file path for the "
        "report, or {enabled, path, log_level, keys, restrictions}.",
        "run",
    )
    temp_dir: str | None = _setting(
        None,
        "zappend's folder for rollback files; versioncube needs none (an Icechunk session is "
        "the transaction). Used only by persist_mem_slices (default: the system's).",
        "unneeded",
    )
    temp_storage_options: dict[str, Any] = _setting(
        {}, "fsspec options for temp_dir when it is a URI.", "unneeded"
    )
    disable_rollback: bool = _setting(
        False,
        "zappend's switch for its backup files; accepted and unnecessary: an append is one "
        "Icechunk commit, so a failed append never changes the cube.",
        "unneeded",
    )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Config:
        """Build a validated Config, rejecting unknown keys and wrong types by their key path."""
        check_mapping(values, cls.hints(), "")
        return cls(**values)

    @classmethod
    def hints(cls) -> dict[str, Any]:
        """The type hint of every setting, with its ``Annotated`` rules and help."""
        return dict(_type_hints(cls))

    @classmethod
    def settings(cls) -> list[tuple[str, str, Any, str]]:
        """(name, type, default, help) of every setting, for generated references."""
        hints = cls.hints()
        return [
            (field.name, type_name(hints[field.name]), default_of(field), field.metadata["help"])
            for field in dataclasses.fields(cls)
        ]


_TYPE_HINTS: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints`` once per class: it takes a millisecond, and every run (every
    one-call append) validates its configuration."""
    if cls not in _TYPE_HINTS:
        _TYPE_HINTS[cls] = typing.get_type_hints(cls, include_extras=True)
    return _TYPE_HINTS[cls]


def default_of(field: dataclasses.Field[Any]) -> Any:
    """A setting's default value (a fresh one for mutable defaults)."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def polling(setting: bool | PollingSettings) -> PollingSettings | None:
    """The ``slice_polling`` setting as {interval, timeout}, or None for no polling."""
    if setting is False:
        return None
    return {**POLLING_DEFAULTS, **(setting if isinstance(setting, Mapping) else {})}
