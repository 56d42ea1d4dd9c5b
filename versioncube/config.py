"""The settings model: every setting is declared once, in :class:`Config`.

Validation (unknown keys, wrong types), typed access and the generated reference all come from
that one declaration. Keys follow zappend's names so existing configuration files keep working.

A configuration can be given as a dict, a YAML or JSON file, or a list of these; later ones are
deep-merged into earlier ones (dicts merge, lists and scalars are replaced) and keyword overrides
win last. ``${VAR}`` in a configuration file is replaced by the environment variable ``VAR``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from versioncube.errors import ConfigError

ConfigItem = Mapping[str, Any] | str | os.PathLike
ConfigLike = ConfigItem | Sequence[ConfigItem] | None


def _setting(default: Any, help: str) -> Any:
    """Declare one setting: its default and the one-sentence help shown in the reference."""
    if isinstance(default, dict | list):
        factory = type(default)
        return dataclasses.field(default_factory=factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """All settings of an append run (zappend's keys plus versioncube's own)."""

    version: Literal[1] = _setting(1, "Version of the configuration format.")
    zarr_version: Literal[3] = _setting(
        3,
        "Zarr format of the cube. Only 3 is possible: Icechunk stores Zarr v3 data.",
    )
    target_dir: str | None = _setting(
        None,
        "Where the cube lives: a local path or file:// URI, memory://NAME, s3://bucket/prefix, "
        "gs://bucket/prefix or az://container/prefix.",
    )
    target_storage_options: dict[str, Any] = _setting(
        {},
        "Options for the target's storage: endpoint_url, region, allow_http, credentials, ...",
    )
    target_branch: str = _setting("main", "The branch of the cube's repository to append to.")
    append_dim: str | None = _setting(
        None,
        "The dimension along which slices are appended (default: the cube's own, or time).",
    )
    slice_engine: str | None = _setting(
        None, "The xarray engine that opens slice files (detected from the file when not set)."
    )
    slice_storage_options: dict[str, Any] = _setting(
        {}, "fsspec options for opening slices given as remote URIs."
    )
    on_conflict: Literal["retry", "fail"] = _setting(
        "retry",
        "When another writer commits first: retry on the new tip (re-checking and re-validating "
        "the slice), or fail.",
    )
    max_retries: int = _setting(
        20, "How many times to retry a conflicting commit, with jittered exponential backoff."
    )
    dry_run: bool = _setting(
        False, "Validate every slice and report what would be committed, but write nothing."
    )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Config:
        """Build a validated Config, rejecting unknown keys and wrong types by name."""
        known = {field.name: field for field in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        for key, value in values.items():
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"unknown configuration key {key!r}{hint}")
            _check_type(value, hints[key], key)
        return cls(**values)

    @classmethod
    def settings(cls) -> list[tuple[str, str, Any, str]]:
        """(name, type, default, help) of every setting, for generated references."""
        hints = typing.get_type_hints(cls)
        rows = []
        for field in dataclasses.fields(cls):
            if field.default_factory is not dataclasses.MISSING:
                default = field.default_factory()
            else:
                default = field.default
            rows.append(
                (field.name, _type_name(hints[field.name]), default, field.metadata["help"])
            )
        return rows


def load_config(config: ConfigLike = None, **overrides: Any) -> Config:
    """Turn any accepted form of configuration plus keyword overrides into one Config."""
    merged: dict[str, Any] = {}
    for item in _config_items(config):
        merged = merge_configs(merged, _read_config_item(item))
    merged = merge_configs(merged, overrides)
    return Config.from_dict(merged)


def merge_configs(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``update`` into ``base``: dicts merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_configs(merged[key], value)
        else:
            merged[key] = value
    return merged


def _config_items(config: ConfigLike) -> list[ConfigItem]:
    if config is None:
        return []
    if isinstance(config, Mapping | str | os.PathLike):
        return [config]
    return list(config)


def _read_config_item(item: ConfigItem) -> Mapping[str, Any]:
    if isinstance(item, Mapping):
        return item
    path = Path(item)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(
            f"cannot read configuration file {str(path)!r}: {error.strerror}"
        ) from None
    text = substitute_env(text, source=str(path))
    try:
        values = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise ConfigError(f"configuration file {str(path)!r} is not valid: {error}") from None
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"configuration file {str(path)!r} must hold a mapping of settings, "
            f"found {type(values).__name__}"
        )
    return values


_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute_env(text: str, *, source: str) -> str:
    """Replace ``${VAR}`` by the environment variable's value; an unset variable is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{source}: environment variable {name!r} is not set")
        return os.environ[name]

    return _ENV_PATTERN.sub(replace, text)


def _check_type(value: Any, expected: Any, path: str) -> None:
    if not _matches(value, expected):
        raise ConfigError(
            f"configuration key {path!r} must be {_type_name(expected)}, "
            f"found {type(value).__name__} {value!r}"
        )
    if typing.get_origin(expected) is dict or expected is dict:
        value_type = (typing.get_args(expected) or (str, Any))[1]
        for key, item in value.items():
            _check_type(item, value_type, f"{path}.{key}")


def _matches(value: Any, expected: Any) -> bool:
    origin = typing.get_origin(expected)
    if expected is Any:
        return True
    if expected is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(expected))
    if origin is Literal:
        return any(value == option and type(value) is type(option) for option in expected.__args__)
    if origin is dict or expected is dict:
        return isinstance(value, Mapping) and all(isinstance(key, str) for key in value)
    if origin is list:
        return isinstance(value, list)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, expected)


def _type_name(expected: Any) -> str:
    origin = typing.get_origin(expected)
    if expected is type(None):
        return "null"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(option) for option in typing.get_args(expected))
    if origin is Literal:
        return " or ".join(repr(option) for option in expected.__args__)
    if origin is dict or expected is dict:
        return "a mapping"
    if origin is list:
        return "a list"
    return {str: "a string", int: "an integer", bool: "true or false", float: "a number"}.get(
        expected, getattr(expected, "__name__", str(expected))
    )
