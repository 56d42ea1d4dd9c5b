"""The colours results are shown in, the same in notebooks (HTML) and pictures (matplotlib).

Every colour is a mid tone that reads on a light and on a dark background alike, so that
results need no stylesheet and no theme detection.
"""

from __future__ import annotations

#: What a commit did, by its record's operation (``append (refs)``: an append of references
#: to a file, see docs/virtual.md). Operations to come (updates, deletes) have their colours
#: here already, so that their commits are drawn apart as soon as they are written.
OPERATION_COLORS: dict[str, str] = {
    "create": "#1f5fae",
    "append": "#3b7dd8",
    "append (refs)": "#58a6e0",
    "materialize": "#8a8a8a",
    "upsert": "#c9a227",
    "update": "#c9a227",
    "replace": "#e08a1e",
    "time_series": "#b06c2c",
    "insert": "#8e5bd0",
    "delete": "#d64545",
    "add-variable": "#2e9e8f",
    "drop-variable": "#7a5230",
}
#: Commits of other operations, and commits versioncube did not write.
OTHER_OPERATION = "#9e9e9e"

#: How a result's state is marked.
OK = "#3a9a4a"
DAMAGE = "#d64545"
WARNING = "#d98b1e"
ACCENT = "#3b7dd8"
#: Borders and rules: grey at partial opacity, visible on light and dark backgrounds.
RULE = "rgba(128, 128, 128, 0.35)"
FAINT_RULE = "rgba(128, 128, 128, 0.15)"
#: Labels that are missing from a cube (coverage gaps): a translucent red.
GAP = "#d64545"
PRESENT = "#3a9a4a"


def operation_color(operation: str) -> str:
    """The colour of a commit's operation (grey for unknown ones)."""
    return OPERATION_COLORS.get(operation, OTHER_OPERATION)
