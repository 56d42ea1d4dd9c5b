"""A cube of groups: what each group looks like, and what appending a slice to each will write.

Two kinds of cube keep several groups in one repository, every append writing all of them in
one commit:

* a pyramid (``levels``): level 0 and its downsampled levels as the groups ``0``, ``1``, ...,
  described by the root's ``xcube_levels`` attribute (:mod:`versioncube.layout.levels`);
* a tree: each node of an ``xarray.DataTree`` slice as the group at its path. A node whose own
  variables (``to_dataset(inherit=False)``) use the append dimension is appended to; the
  others are written once, when the cube is created, and later slices must match them.

Every group is checked against its own outline with the checks of a flat cube, and every
message names the group (``level 2: ...``, ``group /atmos: ...``). Across groups, every group
along the append dimension must get the same rows: the same number of steps after the same
number, with the same labels where it has a label coordinate. So the groups of a cube always
have the same length, which ``verify`` checks too.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, Literal, NoReturn

import numpy as np
import xarray as xr

from versioncube.config.outline import ResolvedOutline
from versioncube.display.format import format_label, quote_names
from versioncube.errors import ConfigError, SliceValidationError
from versioncube.layout.levels import LevelsSetting, LevelsSpec
from versioncube.layout.outline import CubeOutline
from versioncube.layout.tailoring import tailor_slice
from versioncube.layout.validation import (
    AppendPlan,
    Fail,
    check_unchanging,
    plan_append,
    plan_first_slice,
)
from versioncube.store.dataset import INTERNAL_GROUP_PREFIX, is_internal_group, open_store
from versioncube.store.groups import group_order, group_paths, root_attrs, tree_path

GroupKind = Literal["levels", "tree"]
ROOT = ""  # the root group's path


def group_label(kind: GroupKind, path: str) -> str:
    """How messages name a group: ``level 2`` or ``group /atmos/upper``."""
    return f"level {path}" if kind == "levels" and path else f"group {tree_path(path)}"


@contextlib.contextmanager
def in_group(label: str) -> Iterator[None]:
    """Name the group in the slice and configuration errors raised inside."""
    try:
        yield
    except SliceValidationError as error:
        raise SliceValidationError(error.slice_name, f"{label}: {error.reason}") from None
    except ConfigError as error:
        raise ConfigError(f"{label}: {error}") from None
    except Exception as error:  # a foreign error: it keeps its type, and notes the group
        error.add_note(f"{IN_GROUP_NOTE}{label}")
        raise


#: How :func:`in_group` notes the group on a foreign error (``error.__notes__``).
IN_GROUP_NOTE = "in "


def noted_group(error: BaseException | None) -> str | None:
    """The group :func:`in_group` noted on a foreign error, if any."""
    notes = getattr(error, "__notes__", None) or []
    noted = [note for note in notes if note.startswith(IN_GROUP_NOTE)]
    return noted[-1].removeprefix(IN_GROUP_NOTE) if noted else None


@dataclasses.dataclass(frozen=True)
class GroupedSlice:
    """A slice as the groups it writes: group path -> dataset, parents before children."""

    kind: GroupKind
    groups: Mapping[str, xr.Dataset]
    levels: LevelsSpec | None = None

    def label(self, path: str) -> str:
        return group_label(self.kind, path)


def appends_along(outline: CubeOutline) -> bool:
    """Whether a group's variables use the append dimension (else it is written once)."""
    return any(outline.append_dim in variable.dims for variable in outline.variables.values())


@dataclasses.dataclass(frozen=True)
class GroupsOutline:
    """The outline of every group of a cube at one snapshot."""

    kind: GroupKind
    groups: Mapping[str, CubeOutline]  # path -> outline (size 0 for groups written once)
    levels: LevelsSpec | None = None

    @property
    def appended(self) -> list[str]:
        """The groups along the append dimension."""
        return [path for path, outline in self.groups.items() if appends_along(outline)]

    @property
    def size(self) -> int:
        """The length along the append dimension (the same in every group along it)."""
        appended = self.appended
        return self.groups[appended[0]].size if appended else 0

    def label(self, path: str) -> str:
        return group_label(self.kind, path)

    def extended(
        self, size: int, last_label: Any, attrs: Mapping[str, Mapping[str, Any]]
    ) -> GroupsOutline:
        """The outline after an append (see :meth:`CubeOutline.extended`); ``attrs`` are the
        groups' attributes after it."""
        groups = {
            path: outline.extended(
                size if appends_along(outline) else outline.size,
                last_label if outline.last_label is not None else None,
                attrs.get(path),
            )
            for path, outline in self.groups.items()
        }
        return dataclasses.replace(self, groups=groups)


def read_groups_outline(
    store: Any, append_dim: str, *, where: str = "the cube"
) -> GroupsOutline | None:
    """The outline of every data group in ``store`` (a session's store), or None when it holds
    no cube yet. A flat cube reads as a tree of one group, the root."""
    paths = group_paths(store)
    levels = LevelsSpec.from_attrs(root_attrs(store)) if paths else None
    groups = {
        path: CubeOutline.of_dataset(
            open_store(store, path or None, where=where, chunks=None, create_default_indexes=False),
            append_dim,
        )
        for path in paths
    }
    if not any(outline.variables for outline in groups.values()):
        return None
    return GroupsOutline("levels" if levels is not None else "tree", groups, levels)


def grouped_slice(
    source: xr.Dataset | xr.DataTree,
    outline: ResolvedOutline,
    cube: GroupsOutline | None,
    slice_name: str,
) -> GroupedSlice:
    """The groups a slice writes, tailored to the target outline: the levels of a pyramid
    (downsampled lazily from the tailored slice), or the nodes of a tree."""
    if outline.levels is not None:
        if isinstance(source, xr.DataTree):
            raise ConfigError(
                f"levels makes a pyramid of a Dataset slice, and slice {slice_name} is a "
                "DataTree; a cube is either a pyramid or a tree of groups"
            )
        with in_group(group_label("levels", "0")):
            level0 = tailor_slice(source, outline, slice_name)
            if cube is not None and cube.levels is not None:
                spec = cube.levels
            else:
                setting = LevelsSetting.parse(outline.levels)
                assert setting is not None
                spec = setting.settled(level0, f"slice {slice_name}")
        levels = spec.levels(level0)
        groups = {ROOT: xr.Dataset(attrs=spec.to_attrs())}
        groups.update({str(index): level for index, level in enumerate(levels)})
        return GroupedSlice("levels", groups, spec)
    tree = source if isinstance(source, xr.DataTree) else xr.DataTree(source)
    nodes: dict[str, xr.Dataset] = {}
    for node in sorted(tree.subtree, key=lambda node: group_order(node.path)):
        path = node.path.strip("/")
        if is_internal_group(path):
            raise SliceValidationError(
                slice_name,
                f"has the group {tree_path(path)}, whose name starts with "
                f"{INTERNAL_GROUP_PREFIX!r}: such names are kept for versioncube's own groups",
            )
        with in_group(group_label("tree", path)):
            dataset = node.to_dataset(inherit=False)
            nodes[path] = tailor_slice(dataset, node_outline(outline, dataset), slice_name)
    return GroupedSlice("tree", nodes)


def node_outline(outline: ResolvedOutline, dataset: xr.Dataset) -> ResolvedOutline:
    """The target outline as it applies to one node of a tree: ``variables``,
    ``included_variables`` and ``fixed_dims`` name what the node has (a node lacking a
    configured variable does not get it; a node with none of the included variables keeps all
    of its own), ``excluded_variables`` apply everywhere."""
    names = set(map(str, dataset.variables))
    included = tuple(name for name in outline.included_variables if name in names)
    return dataclasses.replace(
        outline,
        variables={k: v for k, v in outline.variables.items() if k == "*" or k in names},
        included_variables=included,
        fixed_dims={dim: size for dim, size in outline.fixed_dims.items() if dim in dataset.dims},
    )


@dataclasses.dataclass(frozen=True)
class GroupedPlan:
    """What appending one slice to every group will write."""

    slice_name: str
    kind: GroupKind
    appended: Mapping[str, AppendPlan]  # groups along the append dimension
    unchanging: Mapping[str, xr.Dataset]  # groups written once (with the cube: else empty)
    creates_cube: bool

    @property
    def rows(self) -> AppendPlan:
        """The rows every appended group gets (the plan of one with labels, if any has)."""
        plans = list(self.appended.values())
        return next((plan for plan in plans if plan.labels is not None), plans[0])

    @property
    def group_paths(self) -> tuple[str, ...]:
        """The appended groups as DataTree paths (``/0``, ``/atmos``), for the record."""
        return tuple(tree_path(path) for path in self.appended)

    def written(self, path: str) -> xr.Dataset | None:
        """What is written into a group: its rows, or (creating the cube) all of it."""
        if path in self.appended:
            return self.appended[path].dataset
        return self.unchanging.get(path)


def plan_grouped(
    cube: GroupsOutline | None,
    grouped: GroupedSlice,
    slice_name: str,
    outline: ResolvedOutline,
    *,
    follows: bool = True,
) -> GroupedPlan:
    """Check every group of a slice against the cube's (None: the slice creates the cube).

    ``follows`` False leaves out the check that the slice's labels follow the cube's last one
    (writes by label, see :mod:`versioncube.write.updates`)."""
    dim = outline.append_dim
    fail = _failer(slice_name)
    if cube is not None:
        _check_same_groups(cube, grouped, fail)
    appended: dict[str, AppendPlan] = {}
    unchanging: dict[str, xr.Dataset] = {}
    for path, dataset in grouped.groups.items():
        stored = cube.groups[path] if cube is not None else None
        converted = {name for name in map(str, dataset.variables) if outline.converts(name)}
        with in_group(grouped.label(path)):
            if stored is None:
                if dim in dataset.dims:
                    appended[path] = plan_first_slice(dataset, dim, slice_name, step=outline.step)
                else:
                    unchanging[path] = dataset
            elif appends_along(stored):
                appended[path] = plan_append(
                    stored,
                    dataset,
                    slice_name,
                    step=outline.step,
                    converted=converted,
                    follows=follows,
                )
            else:
                check_unchanging(stored, dataset, slice_name, converted=converted)
    if not appended:
        fail(f"has no group with dimension {dim!r} to append along")
    _check_same_rows(appended, grouped, dim, fail)
    return GroupedPlan(slice_name, grouped.kind, appended, unchanging, creates_cube=cube is None)


def _check_same_groups(cube: GroupsOutline, grouped: GroupedSlice, fail: Fail) -> None:
    if cube.kind != grouped.kind:
        if grouped.kind == "levels":
            raise ConfigError(
                "levels is set, but the cube has no levels (it was created without; a cube "
                "keeps the layout it was created with, force_new starts it afresh)"
            )
        raise ConfigError(
            "the cube is a pyramid of levels, but levels is not set (a cube keeps the layout it "
            "was created with, force_new starts it afresh)"
        )
    missing = [tree_path(path) for path in cube.groups if path not in grouped.groups]
    extra = [tree_path(path) for path in grouped.groups if path not in cube.groups]
    problems = []
    if missing:
        problems.append(f"lacks group(s) {quote_names(missing)} that the cube has")
    if extra:
        problems.append(f"has group(s) {quote_names(extra)} that the cube does not have")
    if problems:
        fail(" and ".join(problems))


def _check_same_rows(
    plans: Mapping[str, AppendPlan], grouped: GroupedSlice, dim: str, fail: Fail
) -> None:
    """Every group along ``dim`` gets the same rows, with the same labels where it has some."""
    (first_path, first), *others = plans.items()
    first_labels = _labels(grouped.groups[first_path], dim)
    for path, plan in others:
        here, there = grouped.label(path), grouped.label(first_path)
        (start, stop), (first_start, first_stop) = plan.index_range, first.index_range
        if stop - start != first_stop - first_start:
            fail(
                f"{here} has {stop - start} {dim} step(s), {there} has "
                f"{first_stop - first_start}: every group along {dim!r} must get the same steps"
            )
        if start != first_start:
            fail(
                f"{here} holds {start} {dim} step(s) in the cube, {there} holds {first_start}: "
                "the cube's groups differ in length (was it written by another tool? `versioncube "
                "verify` lists what is wrong)"
            )
        labels = _labels(grouped.groups[path], dim)
        if labels is not None and first_labels is not None:
            differing = np.nonzero(labels != first_labels)[0]
            if differing.size:
                row = int(differing[0])
                fail(
                    f"{here} has the {dim} label {format_label(labels[row])} where {there} has "
                    f"{format_label(first_labels[row])}: every group along {dim!r} must get "
                    "the same labels"
                )


def _labels(dataset: xr.Dataset, dim: str) -> np.ndarray | None:
    variable = dataset.variables.get(dim)
    return variable.values if variable is not None else None


def _failer(slice_name: str) -> Fail:
    def fail(message: str) -> NoReturn:
        raise SliceValidationError(slice_name, message)

    return fail
