"""The target outline: what the configuration says the cube looks like, remembered by the cube.

zappend's outline settings (``append_dim``, ``append_step``, ``fixed_dims``,
``included_variables``, ``excluded_variables``, ``variables`` with dims, encoding and attrs,
``attrs``, ``attrs_update_mode``, ``permit_eval``) are stored in the repository's metadata when
the cube is created. Later runs need only the target: they take the stored outline, and a
configuration that contradicts it is a :class:`ConfigError` naming the key, never a silently
different cube. (:class:`versioncube.schema.CubeOutline` is the other side: what the cube's data
looks like at its head.)
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from versioncube.config import Config, jsonable, merge_configs
from versioncube.errors import ConfigError

OUTLINE_KEYS = (
    "append_dim",
    "append_step",
    "fixed_dims",
    "included_variables",
    "excluded_variables",
    "variables",
    "attrs",
    "attrs_update_mode",
    "permit_eval",
)
ALL_VARIABLES = "*"
#: encoding settings that convert slice values on write, so any numeric slice dtype fits
CONVERTING_ENCODINGS = ("dtype", "scale_factor", "add_offset")

_TIME_STEP = re.compile(r"^\s*([+-]?)\s*(\d*)\s*([A-Za-z]+)\s*$")
_TIME_UNITS = ("W", "D", "h", "m", "s", "ms", "us", "ns")


@dataclasses.dataclass(frozen=True)
class AppendStep:
    """A parsed ``append_step``: which way append labels go, and the exact step if one is set."""

    direction: int  # +1: increasing labels, -1: decreasing
    size: int | float | None = None  # the signed step: a number, or a count of ``unit``
    unit: str | None = None  # the numpy timedelta unit of a time step ("D", "h", ...)
    text: str = "+"

    @classmethod
    def parse(cls, value: str | int | float | None) -> AppendStep:
        """Read null, "+", "-", a time delta ("1D", "-6h") or a number; ValueError otherwise."""
        if value is None or value == "+":
            return cls(1)
        if value == "-":
            return cls(-1, text="-")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"append_step {value!r} is not a step")
        if isinstance(value, int | float):
            if value == 0 or math.isnan(value):
                raise ValueError(f"append_step {value!r} is no step")
            return cls(1 if value > 0 else -1, value, None, str(value))
        match = _TIME_STEP.match(value)
        if match is None or match.group(3) not in _TIME_UNITS:
            raise ValueError(f"append_step {value!r} is not a time delta")
        sign, count, unit = match.groups()
        size = int(count or 1) * (-1 if sign == "-" else 1)
        if size == 0:
            raise ValueError(f"append_step {value!r} is no step")
        return cls(1 if size > 0 else -1, size, unit, value.strip())

    def delta(self, label_kind: str) -> Any:
        """The expected difference of two labels of numpy kind ``label_kind``, or None."""
        import numpy as np

        if self.size is None:
            return None
        if self.unit is not None:
            return np.timedelta64(self.size, self.unit) if label_kind == "M" else None
        if label_kind == "M":  # a number with time labels counts seconds, as in zappend
            return np.timedelta64(round(self.size * 10**9), "ns")
        return self.size


@dataclasses.dataclass(frozen=True)
class TargetOutline:
    """The outline settings of a configuration (see the module docstring)."""

    append_dim: str | None = None
    append_step: str | int | float | None = None
    fixed_dims: Mapping[str, int] = dataclasses.field(default_factory=dict)
    included_variables: tuple[str, ...] = ()
    excluded_variables: tuple[str, ...] = ()
    variables: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    attrs_update_mode: str = "keep"
    permit_eval: bool = False

    @classmethod
    def from_config(cls, config: Config) -> TargetOutline:
        return cls.from_metadata({key: getattr(config, key) for key in OUTLINE_KEYS})

    @classmethod
    def from_metadata(cls, values: Mapping[str, Any]) -> TargetOutline:
        """The outline stored in a repository's metadata (keys it lacks keep their defaults)."""
        known = {key: values[key] for key in OUTLINE_KEYS if key in values}
        for key in ("included_variables", "excluded_variables"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)

    def to_metadata(self) -> dict[str, Any]:
        """The outline as JSON data, for the repository's metadata."""
        return jsonable({key: getattr(self, key) for key in OUTLINE_KEYS})

    @property
    def step(self) -> AppendStep:
        return AppendStep.parse(self.append_step)

    def reconciled(self, stored: Mapping[str, Any], where: str) -> TargetOutline:
        """This (configured) outline over the ``stored`` one of the cube at ``where``.

        Settings left at their defaults take the stored values; a setting that differs from the
        stored one raises ConfigError naming its key path.
        """
        given, defaults = self.to_metadata(), TargetOutline().to_metadata()
        values = {}
        for key in OUTLINE_KEYS:
            if key not in stored:
                values[key] = given[key]
                continue
            if given[key] != defaults[key]:
                _refuse_contradiction(stored[key], given[key], key, where)
            values[key] = stored[key]
        return TargetOutline.from_metadata(values)

    def variable(self, name: str) -> dict[str, Any]:
        """A variable's settings: its own merged into those of ``"*"``."""
        defaults = self.variables.get(ALL_VARIABLES) or {}
        return merge_configs(defaults, self.variables.get(name) or {})

    def encoding(self, name: str) -> dict[str, Any]:
        return dict(self.variable(name).get("encoding") or {})

    def converts(self, name: str) -> bool:
        """Whether the configured encoding converts the variable's values on write."""
        return any(key in self.encoding(name) for key in CONVERTING_ENCODINGS)

    def selected_variables(self, slice_variables: Iterable[str]) -> list[str]:
        """The variables of the cube for a slice with ``slice_variables``, in order."""
        in_slice = list(slice_variables)
        configured = [name for name in self.variables if name != ALL_VARIABLES]
        names = list(self.included_variables) or [
            *in_slice,
            *(name for name in configured if name not in in_slice),
        ]
        return [name for name in names if name not in self.excluded_variables]


def _refuse_contradiction(stored: Any, given: Any, path: str, where: str) -> None:
    if isinstance(stored, Mapping) and isinstance(given, Mapping):
        for key, value in given.items():
            if key not in stored:
                raise ConfigError(
                    f"{path}.{key} is {value!r}, but the cube at {where} was created without "
                    f"{path}.{key}{_HINT}"
                )
            _refuse_contradiction(stored[key], value, f"{path}.{key}", where)
    elif stored != given:
        raise ConfigError(
            f"{path} is {given!r}, but the cube at {where} was created with {path} "
            f"{stored!r}{_HINT}"
        )


_HINT = " (a cube keeps the outline it was created with; force_new starts it afresh)"
