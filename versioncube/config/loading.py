"""Reading configurations: dicts, YAML or JSON files (paths or fsspec URIs), lists of them.

Later items are deep-merged into earlier ones (dicts merge, lists and scalars are replaced) and
keyword overrides win last. ``${VAR}`` (or ``$VAR``) in a configuration file is replaced by the
environment variable ``VAR``; ``$$`` stands for a literal ``$``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from versioncube.config.model import Config
from versioncube.display.format import first_line
from versioncube.errors import ConfigError

ConfigItem = Mapping[str, Any] | str | os.PathLike[str]
ConfigLike = ConfigItem | Sequence[ConfigItem] | None


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
    name = os.fspath(item)
    text = _read_text(name)
    text = substitute_env(text, source=name)
    is_json = name.lower().endswith(".json")
    try:
        values = json.loads(text) if is_json else yaml.load(text, Loader=_YamlLoader)
    except (ValueError, yaml.YAMLError) as error:
        language = "JSON" if is_json else "YAML"
        raise ConfigError(
            f"configuration file {name!r} is not valid {language}: {_syntax_error(error)}"
        ) from None
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"configuration file {name!r} must hold a mapping of settings, "
            f"found {type(values).__name__}"
        )
    return values


def _syntax_error(error: Exception) -> str:
    """A parser's error in one line, with where it is (PyYAML's own message spans lines)."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem:
        mark = error.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return f"{error.problem}{where}"
    return first_line(error)


def _read_text(name: str) -> str:
    try:
        if "://" in name and not name.startswith("file://"):
            import fsspec

            with fsspec.open(name, "rt") as file:
                text: str = file.read()  # fsspec is untyped
                return text
        return Path(name.removeprefix("file://")).read_text()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise ConfigError(f"cannot read configuration file {name!r}: {reason}") from None


class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``1e-3`` as a number as YAML 1.2 (and JSON) do."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)

_ENV_PATTERN = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*)|(\$))")


def substitute_env(text: str, *, source: str) -> str:
    """Replace ``${VAR}`` and ``$VAR`` by the environment variable's value, ``$$`` by ``$``.

    An unset ``${VAR}`` is an error; an unset ``$VAR`` stays as it is (as in zappend).
    """

    def replace(match: re.Match[str]) -> str:
        braced, bare, dollar = match.groups()
        if dollar:
            return "$"
        name = braced or bare
        if name in os.environ:
            return os.environ[name]
        if braced:
            raise ConfigError(f"{source}: environment variable {name!r} is not set")
        return match.group(0)

    return _ENV_PATTERN.sub(replace, text)
