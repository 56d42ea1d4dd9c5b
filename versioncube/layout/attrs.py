"""The cube's global attributes: slice attributes, configured ``attrs`` and ``{{ }}`` values.

``attrs_update_mode`` says what slice attributes do to the cube's: ``keep`` the first slice's
(the default), ``replace`` them by the last slice's, ``update`` them with the last slice's, or
``ignore`` slice attributes. The configured ``attrs`` are applied after every append. With
``permit_eval``, an attribute value with ``{{ expression }}`` is computed after each append from
the whole cube, ``ds``: ``"{{ ds.time[-1] }}"`` is the cube's last time label. A value that is
one expression keeps its type (a number stays a number); text around expressions makes a
string. ``lower_bound(array, ref)`` and ``upper_bound(array, ref)`` give the bounds of a
coordinate whose labels mark the ``"lower"`` (default), ``"center"`` or ``"upper"`` end of cells.
Expressions are Python, evaluated with ``eval``: enable ``permit_eval`` only for trusted
configurations.
"""

from __future__ import annotations

import builtins
import datetime
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import xarray as xr

from versioncube.errors import ConfigError

UpdateMode = Literal["keep", "replace", "update", "ignore"]
CellRef = Literal["lower", "center", "upper"]

_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_SAFE_BUILTINS = {
    name: getattr(builtins, name)
    for name in ("abs", "bool", "float", "int", "len", "list", "max", "min", "round", "str", "sum")
}


def merged_attrs(
    mode: UpdateMode,
    cube_attrs: Mapping[str, Any] | None,
    slice_attrs: Mapping[str, Any],
    configured: Mapping[str, Any],
) -> dict[str, Any]:
    """The cube's attributes after appending a slice (``cube_attrs`` None: the first slice)."""
    if mode == "ignore":
        base: dict[str, Any] = {}
    elif cube_attrs is None or mode == "replace":
        base = dict(slice_attrs)
    elif mode == "keep":
        base = dict(cube_attrs)
    else:
        base = {**cube_attrs, **slice_attrs}
    return {**base, **configured}


def has_expressions(attrs: Mapping[str, Any]) -> bool:
    """Whether any attribute value holds a ``{{ expression }}``."""
    return any(isinstance(value, str) and _EXPRESSION.search(value) for value in attrs.values())


def evaluate_attrs(attrs: Mapping[str, Any], dataset: xr.Dataset) -> dict[str, Any]:
    """The attributes whose values hold ``{{ }}`` expressions, computed over ``dataset``."""
    names = {"ds": dataset, "lower_bound": lower_bound, "upper_bound": upper_bound}
    return {
        key: _evaluate(key, value, names)
        for key, value in attrs.items()
        if isinstance(value, str) and _EXPRESSION.search(value)
    }


def _evaluate(key: str, text: str, names: dict[str, Any]) -> Any:
    def value_of(expression: str) -> Any:
        try:
            return to_json(eval(expression.strip(), {"__builtins__": _SAFE_BUILTINS}, names))
        except Exception as error:  # the expression is user code; report what it did
            raise ConfigError(
                f"attrs.{key}: cannot evaluate {{{{{expression}}}}}: "
                f"{type(error).__name__}: {error}"
            ) from None

    matches = list(_EXPRESSION.finditer(text.strip()))
    if len(matches) == 1 and matches[0].span() == (0, len(text.strip())):
        return value_of(matches[0].group(1))  # one expression alone keeps its value's type
    return _EXPRESSION.sub(lambda match: str(value_of(match.group(1))), text)


def to_json(value: Any) -> Any:
    """An expression's value as attribute data: numbers, text, ISO dates, lists, mappings."""
    if isinstance(value, xr.DataArray | xr.Variable):
        value = value.values
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="s"))
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, np.ndarray | list | tuple):
        return [to_json(item) for item in value]
    raise TypeError(f"cannot store a {type(value).__name__} as an attribute")


def lower_bound(array: Any, ref: CellRef = "lower") -> Any:
    """The lower bound of the cells of a 1-D coordinate (labels at each cell's ``ref``)."""
    return _bounds(array, ref)[0]


def upper_bound(array: Any, ref: CellRef = "lower") -> Any:
    """The upper bound of the cells of a 1-D coordinate (labels at each cell's ``ref``)."""
    return _bounds(array, ref)[1]


def _bounds(array: Any, ref: CellRef) -> tuple[Any, Any]:
    values = np.asarray(array)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"bounds need a non-empty 1-D array, got shape {values.shape}")
    first, last = values[0], values[-1]
    step = values[1] - first if values.size > 1 else first - first
    if first > last:
        first, last, step = last, first, -step
    if ref == "lower":
        return first, last + step
    if ref == "upper":
        return first - step, last
    return first - step / 2, last + step / 2
