"""Results, the ratios computed from them with their goals, and the Markdown and JSON reports.

A benchmark returns a :class:`Section`: its measured :class:`Result` rows (raw numbers in
``metrics``) and the :class:`Comparison` rows it cares about. A comparison names the metrics it
divides, possibly from another section (C compares zappend with A's versioncube row), and is
evaluated when the report is written, so every ratio in the report follows from the raw numbers
next to it in ``latest.json``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal


@dataclasses.dataclass(frozen=True)
class Goal:
    """A target for a comparison's value: at least or at most ``limit``."""

    op: Literal[">=", "<="]
    limit: float

    def met(self, value: float) -> bool:
        return value >= self.limit if self.op == ">=" else value <= self.limit

    def describe(self, unit: str) -> str:
        return f"{'≥' if self.op == '>=' else '≤'} {self.limit:g}{unit}"


@dataclasses.dataclass(frozen=True)
class Result:
    """One measured case: raw numbers (seconds, bytes, MB/s, ...) and a line for people."""

    case: str
    metrics: Mapping[str, float]
    summary: str


@dataclasses.dataclass(frozen=True)
class Ref:
    """A metric of a case in a section, e.g. ``Ref("A", "xarray", "mb_per_s")``."""

    section: str
    case: str
    metric: str


@dataclasses.dataclass(frozen=True)
class Comparison:
    """``numerator / denominator`` (or the numerator alone when there is no denominator)."""

    name: str
    numerator: Ref
    denominator: Ref | None = None
    goal: Goal | None = None
    unit: str = "x"  # how the value is shown: "x" for ratios, or the numerator's unit


@dataclasses.dataclass
class Section:
    """What one benchmark returns."""

    key: str  # "A" .. "E"
    title: str
    description: str
    results: list[Result] = dataclasses.field(default_factory=list)
    comparisons: list[Comparison] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Report:
    """All sections of one run, with what they ran on."""

    size: str
    sections: list[Section]
    header: Mapping[str, Any]  # machine, libraries, revision, dates: written as they are

    def metric(self, ref: Ref) -> float | None:
        for section in self.sections:
            if section.key != ref.section:
                continue
            for result in section.results:
                if result.case == ref.case:
                    return result.metrics.get(ref.metric)
        return None

    def value(self, comparison: Comparison) -> float | None:
        """The comparison's value, or None when a section it needs was not run."""
        numerator = self.metric(comparison.numerator)
        if comparison.denominator is None:
            return numerator
        denominator = self.metric(comparison.denominator)
        if numerator is None or not denominator:
            return None
        return numerator / denominator

    def to_json(self) -> dict[str, Any]:
        sections = []
        for section in self.sections:
            comparisons = []
            for comparison in section.comparisons:
                value = self.value(comparison)
                goal = comparison.goal
                comparisons.append(
                    {
                        **dataclasses.asdict(comparison),
                        "value": value,
                        "met": None if goal is None or value is None else goal.met(value),
                    }
                )
            sections.append(
                {
                    "key": section.key,
                    "title": section.title,
                    "description": section.description,
                    "results": [dataclasses.asdict(result) for result in section.results],
                    "comparisons": comparisons,
                }
            )
        return {"size": self.size, **self.header, "sections": sections}

    def to_markdown(self) -> str:
        data = self.to_json()
        lines = ["# versioncube benchmarks", "", *_header_lines(data), ""]
        lines += ["## Ratios and goals", "", "| | comparison | value | goal | met |"]
        lines.append("|---|---|---|---|---|")
        for section in data["sections"]:
            for row in section["comparisons"]:
                lines.append(
                    f"| {section['key']} | {row['name']} | {_value(row)} | {_goal(row)} "
                    f"| {_met(row['met'])} |"
                )
        for section in data["sections"]:
            lines += ["", f"## {section['key']}. {section['title']}", "", section["description"]]
            lines += ["", "| case | result |", "|---|---|"]
            lines += [f"| {row['case']} | {row['summary']} |" for row in section["results"]]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> tuple[Path, Path]:
        """Write ``latest.md`` and ``latest.json`` into ``folder``; return their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        markdown, data = folder / "latest.md", folder / "latest.json"
        markdown.write_text(self.to_markdown())
        data.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return markdown, data


def _header_lines(data: Mapping[str, Any]) -> list[str]:
    machine = data["machine"]
    libraries = ", ".join(f"{name} {version}" for name, version in data["libraries"].items())
    lines = [
        f"Size `{data['size']}`, started {data['started']}, took {data['seconds']:.0f} s; "
        f"versioncube at {data['revision']}.",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM, "
        f"{machine['os']}, Python {machine['python']}; load average (1 min) "
        f"{machine['load_average_1min']} at the start, {data['load_average_at_end']} at the end.",
        f"- Libraries: {libraries}.",
    ]
    zappend = data.get("zappend_libraries")
    if zappend:
        listed = ", ".join(f"{name} {version}" for name, version in zappend.items())
        lines.append(f"- zappend's own virtual environment: {listed}.")
    return lines


def _value(row: Mapping[str, Any]) -> str:
    if row["value"] is None:
        return "not run"
    return f"{row['value']:.2f}{row['unit']}"


def _goal(row: Mapping[str, Any]) -> str:
    goal = row["goal"]
    return Goal(goal["op"], goal["limit"]).describe(row["unit"]) if goal else "—"


def _met(met: bool | None) -> str:
    return "—" if met is None else ("yes" if met else "**no**")
