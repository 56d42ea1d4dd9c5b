"""How slices are provided and opened: the ``slice_*`` settings of a run, in one object."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from versioncube.config.model import Config, PollingSettings, polling
from versioncube.slices.sources import Context, resolve_source


@dataclasses.dataclass(frozen=True)
class SliceOptions:
    """How slices are provided and opened: the ``slice_*`` settings of a run."""

    engine: str | None = None
    storage_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    polling: PollingSettings | None = None
    source: Callable[..., Any] | None = None
    source_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    persist: bool = False
    temp_dir: str | None = None
    temp_storage_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    context: Context | None = None
    #: Read slice files as trees of groups (xarray.DataTree): always (True), never (False), or
    #: when the file has groups (None); the appender sets it from the cube's layout.
    groups: bool | None = False

    @classmethod
    def from_config(cls, config: Config) -> SliceOptions:
        return cls(
            engine=config.slice_engine,
            storage_options=config.slice_storage_options,
            polling=polling(config.slice_polling),
            source=resolve_source(config.slice_source),
            source_kwargs=config.slice_source_kwargs,
            persist=config.persist_mem_slices,
            temp_dir=config.temp_dir,
            temp_storage_options=config.temp_storage_options,
            context=Context(config),
        )

    def overridden(
        self, *, engine: str | None = None, storage_options: Mapping[str, Any] | None = None
    ) -> SliceOptions:
        """These options with the engine and storage options replaced where given."""
        return dataclasses.replace(
            self,
            engine=self.engine if engine is None else engine,
            storage_options=self.storage_options if storage_options is None else storage_options,
        )
