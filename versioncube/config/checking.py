"""Checking configuration values against the declared types, and naming types in words.

A setting's type hint is its schema (see :mod:`versioncube.config.model`): :func:`check_mapping`
walks a configuration along the hints and raises :class:`ConfigError` naming the full key path
(``variables.tas.encoding.chunks``) of an unknown key or a wrong value; :func:`type_name` says
what a hint accepts, in the words the errors and the generated reference use.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from versioncube.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Rule:
    """A constraint beyond the type (``Annotated[int, POSITIVE]``): a test and what it expects."""

    test: Callable[[Any], bool]
    expected: str


@dataclasses.dataclass(frozen=True)
class Because:
    """Why a value is refused, added to the error message (``Annotated[..., Because(...)]``)."""

    reason: str


POSITIVE = Rule(lambda value: value > 0, "greater than 0")


def _check(value: Any, expected: Any, path: str) -> None:
    """Check ``value`` against a type hint, naming ``path`` (``variables.tas.dims``) on error."""
    declared = expected
    expected, rules, reasons = unwrap(declared)
    if is_union(expected):
        option = next((o for o in typing.get_args(expected) if _matches(value, unwrap(o)[0])), None)
        if option is None:
            _mismatch(value, declared, path, reasons)
        _check(value, option, path)
    elif not _matches(value, expected):
        _mismatch(value, declared, path, reasons)
    elif typing.is_typeddict(expected):
        check_mapping(value, typing.get_type_hints(expected, include_extras=True), path)
    elif _origin(expected) is dict:
        value_type = typing.get_args(expected)[1]
        for key, item in value.items():
            _check(item, value_type, f"{path}.{key}")
    elif _origin(expected) is list:
        (item_type,) = typing.get_args(expected)
        for index, item in enumerate(value):
            _check(item, item_type, f"{path}[{index}]")
    for rule in rules:
        if not rule.test(value):
            raise ConfigError(
                f"configuration key {path!r} must be {rule.expected}, found {value!r}"
            )


def check_mapping(values: Mapping[str, Any], hints: Mapping[str, Any], path: str) -> None:
    for key, value in values.items():
        key_path = f"{path}.{key}" if path else str(key)
        if key not in hints:
            close = difflib.get_close_matches(str(key), hints, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown configuration key {key_path!r}{hint}")
        _check(value, hints[key], key_path)


def _mismatch(value: Any, expected: Any, path: str, reasons: list[str]) -> typing.NoReturn:
    because = "".join(f": {reason}" for reason in reasons)
    raise ConfigError(
        f"configuration key {path!r} must be {type_name(expected)}, "
        f"found {type(value).__name__} {value!r}{because}"
    )


def unwrap(expected: Any) -> tuple[Any, list[Rule], list[str]]:
    """Split ``Annotated[T, ...]`` into T, its rules and its reasons."""
    if typing.get_origin(expected) is not Annotated:
        return expected, [], []
    extras = expected.__metadata__
    rules = [extra for extra in extras if isinstance(extra, Rule)]
    reasons = [extra.reason for extra in extras if isinstance(extra, Because)]
    return expected.__origin__, rules, reasons


def help_text(expected: Any) -> str:
    """The help text in ``Annotated[T, "help"]``, or an empty string."""
    if typing.get_origin(expected) is not Annotated:
        return ""
    return " ".join(extra for extra in expected.__metadata__ if isinstance(extra, str))


def _origin(expected: Any) -> Any:
    return typing.get_origin(expected) or expected


def is_union(expected: Any) -> bool:
    return typing.get_origin(expected) in (typing.Union, types.UnionType)


def _matches(value: Any, expected: Any) -> bool:
    """Whether ``value`` has the type ``expected`` (its outer shape: items are checked apart)."""
    origin = _origin(expected)
    if expected is Any:
        return True
    if expected is type(None):
        return value is None
    if is_union(expected):
        return any(_matches(value, unwrap(option)[0]) for option in typing.get_args(expected))
    if origin is Literal:
        return any(value == option and type(value) is type(option) for option in expected.__args__)
    if origin is dict or typing.is_typeddict(expected):
        return isinstance(value, Mapping) and all(isinstance(key, str) for key in value)
    if origin is list:
        return isinstance(value, list | tuple)
    if origin is Callable:
        return callable(value) and not isinstance(value, str)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, expected)


def type_name(expected: Any) -> str:
    """A type hint in words, as error messages and the reference show it."""
    expected, rules, _ = unwrap(expected)
    origin = _origin(expected)
    if expected is type(None):
        name = "null"
    elif is_union(expected):
        options = typing.get_args(expected)
        if float in options:  # "a number" includes the integers
            options = tuple(option for option in options if option is not int)
        name = " or ".join(type_name(option) for option in options)
    elif origin is Literal:
        name = " or ".join(json.dumps(option) for option in expected.__args__)
    elif typing.is_typeddict(expected):
        name = "a mapping"
    elif origin is dict:
        value_type = typing.get_args(expected)[1]
        name = "a mapping" if value_type is Any else f"a mapping (values: {type_name(value_type)})"
    elif origin is list:
        (item_type,) = typing.get_args(expected)
        name = f"a list ({type_name(item_type)} each)"
    elif origin is Callable:
        name = "a callable"
    else:
        names = {str: "a string", int: "an integer", bool: "true or false", float: "a number"}
        name = names.get(expected, "anything" if expected is Any else str(expected))
    return " ".join([name, *(f"{rule.expected}" for rule in rules if rule is POSITIVE)])
