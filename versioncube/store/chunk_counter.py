"""A scheduler plugin that counts the chunks stored by ``dask.array.store`` tasks (what
``to_icechunk`` runs), so that a client can report a big slice's progress across workers.

Its own module: it imports ``distributed``, which a run without a cluster never loads.
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

NAME = "versioncube-stored-chunks"


class StoredChunks(SchedulerPlugin):
    """Counts the chunk-storing tasks that finished since the plugin was added."""

    name = NAME

    def __init__(self) -> None:
        self.count = 0

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish != "memory":
            return
        if isinstance(key, tuple) and _stores_chunks(str(key[0])):
            self.count += 1


def _stores_chunks(name: str) -> bool:
    """Whether tasks of this name store chunks: ``store-map`` (dask.array.store), or
    ``ice-changeset`` (Icechunk's per-chunk change sets, into which dask fuses the stores),
    not the tree reduction merging them (``-partial``, ``-aggregate``)."""
    if name.startswith("store-map"):
        return True
    return name.startswith("ice-changeset-") and not name.startswith(
        ("ice-changeset-partial", "ice-changeset-aggregate")
    )


def _count(dask_scheduler: Any) -> int:
    """Runs on the scheduler: the count, the plugin added on first use."""
    plugin = dask_scheduler.plugins.get(NAME)
    if plugin is None:
        plugin = StoredChunks()
        dask_scheduler.add_plugin(plugin, name=NAME)
    return int(plugin.count)


def stored_chunks(client: Any) -> int:
    """Chunks stored on the client's cluster since it was first asked."""
    return int(client.run_on_scheduler(_count))
