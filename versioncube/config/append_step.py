"""``append_step``: how append labels must follow each other (zappend's setting)."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Literal, TypeGuard

#: The numpy timedelta units a time step may use.
TimeUnit = Literal["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns"]

_TIME_STEP = re.compile(r"^\s*([+-]?)\s*(\d*)\s*([A-Za-z]+)\s*$")
_TIME_UNITS: tuple[TimeUnit, ...] = ("Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns")
#: Calendar units: a step of these is a count of calendar months, not a fixed duration.
_MONTHS = {"Y": 12, "M": 1}


@dataclasses.dataclass(frozen=True)
class AppendStep:
    """A parsed ``append_step``: which way append labels go, and the exact step if one is set."""

    direction: int  # +1: increasing labels, -1: decreasing
    size: int | float | None = None  # the signed step: a number, or a count of ``unit``
    unit: TimeUnit | None = None  # the numpy timedelta unit of a time step ("D", "h", ...)
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
        if match is None or not _is_time_unit(unit := match.group(3)):
            raise ValueError(f"append_step {value!r} is not a time delta")
        sign, count = match.group(1, 2)
        size = int(count or 1) * (-1 if sign == "-" else 1)
        if size == 0:
            raise ValueError(f"append_step {value!r} is no step")
        return cls(1 if size > 0 else -1, size, unit, value.strip())

    @property
    def calendar_months(self) -> int | None:
        """The step in calendar months for ``"1M"``/``"1Y"`` steps, else None."""
        if self.unit not in _MONTHS or self.size is None:
            return None
        return int(self.size) * _MONTHS[self.unit]

    def delta(self, label_kind: str) -> Any:
        """The expected difference of two labels of numpy kind ``label_kind``, or None (no
        step, or a calendar step: see :attr:`calendar_months`)."""
        import numpy as np

        if self.size is None or self.calendar_months is not None:
            return None
        if self.unit is not None:
            # a time step counts whole units (see parse)
            return np.timedelta64(int(self.size), self.unit) if label_kind == "M" else None
        if label_kind == "M":  # a number with time labels counts seconds, as in zappend
            return np.timedelta64(round(self.size * 10**9), "ns")
        return self.size


def _is_time_unit(text: str) -> TypeGuard[TimeUnit]:
    return text in _TIME_UNITS
