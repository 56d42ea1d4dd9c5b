"""The configuration reference, derived from the declaration of every setting in ``Config``.

``versioncube --help-config md|json`` prints it, and docs/configuration.md is the Markdown
form: one row per setting and per nested key (``variables.NAME.encoding.chunks``), in the same
words the validation uses. The JSON form is a JSON Schema of the configuration.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable, Iterator
from typing import Any, Literal

from versioncube.config.checking import POSITIVE, help_text, is_union, type_name, unwrap
from versioncube.config.model import CATEGORIES, Config, default_of
from versioncube.display.json import to_json

INTRODUCTION = """\
Generated from the one declaration of every setting (`versioncube.config.model.Config`) by
`make docs`; `versioncube --help-config md` prints this page, `--help-config json` a JSON
Schema, and a test fails when this page is out of date.

A configuration is a dict, a YAML or JSON file, or a list of these merged in order (mappings
merge key by key, everything else is replaced); keyword arguments and command-line flags
override it. `${VAR}` (or `$VAR`) in a file is replaced by the environment variable `VAR` (an
unset `${VAR}` is an error), `$$` by `$`. Unknown keys, wrong types and wrong values are
rejected with the key's full path, e.g. `variables.tas.encoding.chunks`. The keys are
zappend's, with the same meaning, plus `target_branch` and the Zarr v3 encodings `shards` and
`compressors`. The target outline is stored with the cube when it is created: later runs need
only the target, and a setting that contradicts the stored outline is an error."""


def reference(format: Literal["md", "json"]) -> str:
    """The reference as Markdown or as a JSON Schema."""
    if format == "json":
        return json.dumps(json_schema(), indent=2)
    return markdown()


def markdown() -> str:
    """The reference as Markdown: a table per section, nested keys as dotted paths."""
    hints = Config.hints()
    parts = ["# Configuration reference", "", INTRODUCTION]
    for category, title in CATEGORIES.items():
        parts += ["", f"## {title}", "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for field in dataclasses.fields(Config):
            if field.metadata["category"] != category:
                continue
            hint = hints[field.name]
            shown = f"`{json.dumps(default_of(field))}`"
            parts.append(_row(field.name, hint, shown, field.metadata["help"]))
            parts += [
                _row(path, sub, "", help_text(sub)) for path, sub in _nested(field.name, hint)
            ]
    return "\n".join(parts) + "\n"


def _row(path: str, hint: Any, shown_default: str, help: str) -> str:
    return f"| `{path}` | {type_name(hint)} | {shown_default} | {help} |"


def _nested(path: str, hint: Any) -> Iterator[tuple[str, Any]]:
    """(dotted path, type hint) of every key nested in a setting's mappings."""
    base = unwrap(hint)[0]
    options = typing.get_args(base) if is_union(base) else (base,)
    for option in options:
        option = unwrap(option)[0]
        if typing.is_typeddict(option):
            for key, sub in typing.get_type_hints(option, include_extras=True).items():
                yield f"{path}.{key}", sub
                yield from _nested(f"{path}.{key}", sub)
        elif typing.get_origin(option) is dict:
            value_type = typing.get_args(option)[1]
            if typing.is_typeddict(unwrap(value_type)[0]):
                yield from _nested(f"{path}.NAME", value_type)


def json_schema() -> dict[str, Any]:
    """The configuration as a JSON Schema (draft 2020-12)."""
    hints = Config.hints()
    properties = {}
    for field in dataclasses.fields(Config):
        properties[field.name] = {
            **_schema(hints[field.name]),
            "description": field.metadata["help"],
            "default": to_json(default_of(field)),
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "versioncube configuration",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }


def _schema(hint: Any) -> dict[str, Any]:
    base, rules, _ = unwrap(hint)
    schema = _base_schema(base)
    if help_text(hint):
        schema["description"] = help_text(hint)
    if POSITIVE in rules:
        schema["exclusiveMinimum"] = 0
    return schema


_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def _base_schema(base: Any) -> dict[str, Any]:
    origin = typing.get_origin(base) or base
    if base in _SIMPLE:
        return {"type": _SIMPLE[base]}
    if is_union(base):
        return {"anyOf": [_schema(option) for option in typing.get_args(base)]}
    if origin is Literal:
        values = list(base.__args__)
        return {"const": values[0]} if len(values) == 1 else {"enum": values}
    if typing.is_typeddict(base):
        hints = typing.get_type_hints(base, include_extras=True)
        properties = {key: _schema(sub) for key, sub in hints.items()}
        return {"type": "object", "properties": properties, "additionalProperties": False}
    if origin is dict:
        value_type = typing.get_args(base)[1]
        additional = True if value_type is Any else _schema(value_type)
        return {"type": "object", "additionalProperties": additional}
    if origin is list:
        return {"type": "array", "items": _schema(typing.get_args(base)[0])}
    if origin is Callable:
        return {"description": "a Python callable (from Python only)"}
    return {}
