"""The target outline: what the configuration says the cube looks like, remembered by the cube.

zappend's outline settings (``append_dim``, ``append_step``, ``fixed_dims``,
``included_variables``, ``excluded_variables``, ``variables`` with dims, encoding and attrs,
``attrs``, ``attrs_update_mode``, ``permit_eval``) are stored in the repository's metadata when
the cube is created. Later runs need only the target: they take the stored outline, and a
configuration that contradicts it is a :class:`ConfigError` naming the key, never a silently
different cube. (:class:`versioncube.layout.outline.CubeOutline` is the other side: what the
cube's data looks like at its head.)

A configured outline may leave ``append_dim`` unset; the outline an append works with is a
:class:`ResolvedOutline`, whose append dimension is settled (the stored one, else the configured
one, else :data:`DEFAULT_APPEND_DIM`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from versioncube.config.append_step import AppendStep
from versioncube.config.loading import merge_configs
from versioncube.config.model import Config
from versioncube.display.json import to_json
from versioncube.errors import ConfigError

#: The append dimension of a cube whose configuration names none (zappend's default).
DEFAULT_APPEND_DIM = "time"

#: What slice attributes do to the cube's (see :mod:`versioncube.layout.attrs`).
AttrsUpdateMode = Literal["keep", "replace", "update", "ignore"]

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
    "levels",
)
#: Outline settings stored only when set (null otherwise, for cubes that do not use them).
OPTIONAL_KEYS = ("levels",)
ALL_VARIABLES = "*"
#: encoding settings that convert slice values on write, so any numeric slice dtype fits
CONVERTING_ENCODINGS = ("dtype", "scale_factor", "add_offset")


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
    attrs_update_mode: AttrsUpdateMode = "keep"
    permit_eval: bool = False
    levels: Any = None  # the ``levels`` setting as configured (see versioncube.layout.levels)

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
        """The outline as JSON data, for the repository's metadata (``levels`` only when set,
        so that the metadata of cubes without levels stays as it was)."""
        return {
            key: to_json(getattr(self, key))
            for key in OUTLINE_KEYS
            if key not in OPTIONAL_KEYS or getattr(self, key) is not None
        }

    @property
    def step(self) -> AppendStep:
        return AppendStep.parse(self.append_step)

    def reconciled(self, stored: Mapping[str, Any], where: str) -> TargetOutline:
        """This (configured) outline over the ``stored`` one of the cube at ``where``.

        Settings left at their defaults take the stored values; a setting that differs from the
        stored one raises ConfigError naming its key path.
        """
        given, defaults = self.to_metadata(), TargetOutline().to_metadata()
        if stored:  # a stored outline without an optional setting was created without it
            stored = {**dict.fromkeys(OPTIONAL_KEYS), **stored}
        values = {}
        for key in OUTLINE_KEYS:
            if key not in stored:
                values[key] = given.get(key)
                continue
            if given.get(key) != defaults.get(key):
                _refuse_contradiction(stored[key], given.get(key), key, where)
            values[key] = stored[key]
        return TargetOutline.from_metadata(values)

    def resolved(self) -> ResolvedOutline:
        """This outline with its append dimension settled (:data:`DEFAULT_APPEND_DIM` if unset)."""
        values = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        return ResolvedOutline(**{**values, "append_dim": self.append_dim or DEFAULT_APPEND_DIM})

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


@dataclasses.dataclass(frozen=True)
class ResolvedOutline(TargetOutline):
    """A target outline whose append dimension is settled, as an append needs it."""

    append_dim: str = DEFAULT_APPEND_DIM


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
