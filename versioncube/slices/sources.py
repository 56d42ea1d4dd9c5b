"""Slice sources: user code that provides each slice (zappend's ``slice_source``).

A slice source is a function, a context-manager function or a class (typically a
:class:`SliceSource`), given as the object itself or as its dotted name (``package.module.name``).
It is called with each slice item as its arguments: a tuple item is ``(args, kwargs)``, a list
is the positional arguments, a dict the keyword arguments, anything else the one argument.
``slice_source_kwargs`` adds keyword arguments (the item's own win), and a parameter named
``ctx`` receives the run's :class:`Context` (as the first argument when it has no default,
else by keyword). The source returns (or, as a context manager, yields) a dataset, a path or
URI, or a :class:`SliceSource`, which is closed after the slice is appended.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from versioncube.errors import SliceSourceImportError, SliceSourceTypeError

if TYPE_CHECKING:
    import xarray as xr

    from versioncube.config.model import Config


class SliceSource(abc.ABC):
    """A closable source of one slice dataset, as in zappend.

    ``get_dataset()`` is called once, before the append; ``close()`` once, after it.
    """

    @abc.abstractmethod
    def get_dataset(self) -> xr.Dataset:
        """Provide the slice dataset (open, compute, crop, ...)."""

    def close(self) -> None:  # noqa: B027 - closing is optional for a source
        """Release what ``get_dataset`` bound (files, temporary data)."""


@dataclasses.dataclass(frozen=True)
class Context:
    """What a slice source's ``ctx`` parameter receives: the run's settings.

    ``ctx.config.extra`` holds the free-form ``extra`` settings, as in zappend.
    """

    config: Config


def resolve_source(source: str | Callable[..., Any] | None) -> Callable[..., Any] | None:
    """The configured ``slice_source`` as a callable (importing a dotted name)."""
    if source is None or callable(source):
        return source
    module_name, _, attribute = source.rpartition(".")
    try:
        value = importlib.import_module(module_name) if module_name else None
        for part in attribute.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError, ValueError) as error:
        raise SliceSourceImportError(
            f"configuration key 'slice_source' is {source!r}, which cannot be imported: {error}"
        ) from None
    if not callable(value):
        raise SliceSourceTypeError(
            f"configuration key 'slice_source' is {source!r}, a {type(value).__name__}, "
            "not a function or class"
        )
    return value


def source_arguments(item: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A slice item as a source's arguments: tuple (args, kwargs), list args, dict kwargs."""
    if isinstance(item, tuple):
        if len(item) != 2 or not isinstance(item[0], list | tuple):
            raise TypeError("a tuple slice item must be (args, kwargs)")
        args, kwargs = item
        if not isinstance(kwargs, Mapping):
            raise TypeError("a tuple slice item must be (args, kwargs) with kwargs a dict")
        return tuple(args), dict(kwargs)
    if isinstance(item, list):
        return tuple(item), {}
    if isinstance(item, dict):
        return (), dict(item)
    return (item,), {}


def call_source(
    source: Callable[..., Any], item: Any, extra_kwargs: Mapping[str, Any], ctx: Context
) -> Any:
    """Call the slice source for one item (see the module docstring for the arguments)."""
    args, kwargs = source_arguments(item)
    kwargs = {**extra_kwargs, **kwargs}
    try:
        parameter = inspect.signature(source).parameters.get("ctx")
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        parameter = None
    if parameter is not None and parameter.default is inspect.Parameter.empty:
        args = (ctx, *args)
    elif parameter is not None:
        kwargs["ctx"] = ctx
    return source(*args, **kwargs)


def provides_dataset(value: Any) -> bool:
    """Whether ``value`` is a SliceSource or a context manager that yields a dataset.

    Datasets and paths are context managers too, but they are slices themselves.
    """
    import os

    import xarray as xr

    if isinstance(value, xr.Dataset | str | os.PathLike):
        return False
    return hasattr(value, "get_dataset") or isinstance(value, contextlib.AbstractContextManager)


@contextlib.contextmanager
def entered(provided: Any) -> Iterator[Any]:
    """What a source provided, ready to use: a SliceSource's or context manager's dataset."""
    if not provides_dataset(provided):
        yield provided
    elif hasattr(provided, "get_dataset"):
        try:
            yield provided.get_dataset()
        finally:
            provided.close()
    else:
        with provided as dataset:
            yield dataset
