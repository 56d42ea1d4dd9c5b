"""A big (dask-backed) slice written by a dask cluster's workers, still one commit.

:class:`LazyWriter` is how an append writes a slice's dask-backed variables (see
:class:`~versioncube.write.append.AppendChange`). Without a cluster it is plain
``icechunk.xarray.to_icechunk`` on dask's default scheduler. With one (a
:class:`~versioncube.store.cluster.Cluster`):

1. each variable's dask chunks are aligned to the cube's chunks (its shards when sharded),
   counted from the row the slice starts at: a dask chunk never shares a Zarr chunk with
   another, so no two workers write the same chunk (``safe_chunks=False`` would let them, and
   one of the two writes is then silently lost);
2. the peak memory per worker is bounded from the chunk sizes (:class:`MemoryBound`: a worker
   holds a chunk as read, as encoded and compressed, per thread, over its own footprint) and a
   slice whose chunks would not fit the workers' ``memory_limit`` is refused with advice
   before anything is written;
3. ``to_icechunk`` forks the session, the workers write the chunks through the forks, and the
   forks come back and are merged into the session, which the commit loop then commits once;
   the chunks written so far are reported while the workers write.

A worker that dies is replaced and its tasks re-run by dask (``allowed-failures``); when dask
gives up, the error stops the append and nothing is committed. Chunks written by the forks of
an append that was not committed are unreachable and removed by ``gc``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

import icechunk
import xarray as xr
import zarr
import zarr.errors
from icechunk.xarray import to_icechunk

from versioncube.display.format import human_size
from versioncube.errors import ClusterError
from versioncube.store.cluster import CHUNK_COPIES, WORKER_BASE_BYTES, Cluster

logger = logging.getLogger(__name__)

#: Called with (chunks written, chunks to write) while the workers write a big slice.
ChunkProgress = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class MemoryBound:
    """What one worker holds at most while writing a slice: its own footprint plus, per
    thread, three copies (as read, as encoded, compressed) of the largest chunk it handles."""

    chunk_bytes: int  # the largest chunk: a dask chunk, or the cube's chunk it is written as
    variable: str  # the variable that has it
    threads: int  # threads per worker

    @property
    def per_worker(self) -> int:
        return WORKER_BASE_BYTES + CHUNK_COPIES * self.chunk_bytes * self.threads

    def describe(self) -> str:
        threads = f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        return (
            f"peak memory per worker about {human_size(self.per_worker)} "
            f"({human_size(WORKER_BASE_BYTES)} + {CHUNK_COPIES} x {human_size(self.chunk_bytes)}, "
            f"the largest chunk ({self.variable}), x {threads})"
        )


def target_chunks(
    session: icechunk.Session, dataset: xr.Dataset, group: str | None = None
) -> dict[str, tuple[int, ...]]:
    """The Zarr chunks (shards when sharded) each dask-backed variable is written in: the
    cube's arrays' when they exist, else its encoding's (a new cube)."""
    found: dict[str, tuple[int, ...]] = {}
    try:
        root: zarr.Group | None = zarr.open_group(session.store, path=group or "", mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):  # a new cube
        root = None
    existing = set(root.array_keys()) if root is not None else set()
    for name, variable in dataset.variables.items():
        if not hasattr(variable.data, "dask"):
            continue
        if root is not None and name in existing:
            array = root[str(name)]
            assert isinstance(array, zarr.Array)
            found[str(name)] = tuple(array.shards or array.chunks)
        else:
            chunks = variable.encoding.get("shards") or variable.encoding.get("chunks")
            if chunks is not None and len(chunks) == variable.ndim:
                found[str(name)] = tuple(int(c) for c in chunks)
    return found


def aligned(
    dataset: xr.Dataset, chunks: Mapping[str, tuple[int, ...]], append_dim: str, offset: int
) -> xr.Dataset:
    """The dataset with each dask-backed variable re-chunked, where it is not already, so that
    every dask chunk covers whole Zarr chunks of the cube (``offset``: the row the slice starts
    at along ``append_dim``; the cube's last chunk may be partly filled)."""
    result = dataset.copy(deep=False)
    for name, zarr_chunks in chunks.items():
        variable = dataset.variables[name]
        wanted: dict[str, tuple[int, ...]] = {}
        for axis, (dim, size) in enumerate(zip(variable.dims, zarr_chunks, strict=True)):
            start = offset if dim == append_dim else 0
            have = variable.chunks[axis] if variable.chunks is not None else ()
            if not _covers_whole_chunks(have, size, start):
                wanted[str(dim)] = _grid(variable.shape[axis], size, start)
        if wanted:
            rechunked = variable.chunk(wanted)
            rechunked.encoding = variable.encoding
            result[name] = rechunked
    return result


def _covers_whole_chunks(have: tuple[int, ...], size: int, start: int) -> bool:
    """Whether each dask chunk (lengths ``have``, from row ``start``) ends on a Zarr chunk
    boundary (the last may end where the array ends)."""
    position = start
    for length in have[:-1]:
        position += length
        if position % size:
            return False
    return True


def _grid(length: int, size: int, start: int) -> tuple[int, ...]:
    """Chunk lengths covering ``length`` rows from ``start`` on a grid of ``size``."""
    first = min(length, size - start % size)
    chunks = [first] if first else []
    rest = length - first
    chunks += [size] * (rest // size)
    if rest % size:
        chunks.append(rest % size)
    return tuple(chunks)


def memory_bound(
    dataset: xr.Dataset, chunks: Mapping[str, tuple[int, ...]], threads: int
) -> MemoryBound | None:
    """The peak memory per worker for writing ``dataset`` (already aligned) in ``chunks``."""
    largest: tuple[int, str] | None = None
    for name, variable in dataset.variables.items():
        if variable.chunks is None:
            continue
        itemsize = variable.dtype.itemsize
        dask_chunk = math.prod(max(sizes, default=0) for sizes in variable.chunks) * itemsize
        stored = chunks.get(str(name))
        zarr_chunk = math.prod(stored) * itemsize if stored else 0
        size = max(dask_chunk, zarr_chunk)
        if largest is None or size > largest[0]:
            largest = (size, str(name))
    if largest is None:
        return None
    return MemoryBound(largest[0], largest[1], threads)


def check_fits(bound: MemoryBound, limit: int | None, slice_name: str) -> None:
    """Refuse a slice whose chunks would take a worker beyond ``limit`` bytes."""
    if limit is None or bound.per_worker <= limit:
        return
    raise ClusterError(
        f"slice {slice_name}: writing it needs {bound.describe()}, more than the workers' "
        f"memory_limit {human_size(limit)}; nothing was written. Open it with smaller dask "
        "chunks (chunks={...}), give the cube smaller chunks (variables.NAME.encoding.chunks), "
        "or raise memory_limit"
    )


@dataclasses.dataclass
class LazyWriter:
    """Writes a slice's dask-backed variables into an append's session (module docstring)."""

    cluster: Cluster | None = None
    on_chunks: ChunkProgress | None = None
    report: Callable[[str], None] | None = None  # gets each big slice's memory bound
    #: the memory bound of the last slice written on the cluster (reported by the run)
    last_bound: MemoryBound | None = None

    def write(
        self,
        dataset: xr.Dataset,
        session: icechunk.Session,
        slice_name: str,
        *,
        append_dim: str,
        offset: int | None = None,
        group: str | None = None,
        mode: Literal["w", "w-"] | None = None,
    ) -> None:
        """Write ``dataset`` into ``session``: appended along ``append_dim`` after the cube's
        ``offset`` rows, or (``offset`` None) as a new cube (``mode``); aligned, bounded and
        reported on a cluster."""
        options: dict[str, Any] = {"group": group, "align_chunks": True}
        if offset is None:
            options["mode"] = mode
        else:
            options["append_dim"] = append_dim
        lazy = any(hasattr(variable.data, "dask") for variable in dataset.variables.values())
        if self.cluster is None or not lazy:
            to_icechunk(dataset, session, **options)
            return
        chunks = target_chunks(session, dataset, group)
        source = dataset
        dataset = aligned(dataset, chunks, append_dim, offset or 0)
        threads = self.cluster.threads_per_worker()
        bounds = [memory_bound(d, chunks, threads) for d in (source, dataset)]
        bound = max((b for b in bounds if b is not None), key=lambda b: b.chunk_bytes, default=None)
        if bound is not None:
            check_fits(bound, self.cluster.memory_limit, slice_name)
            line = f"writing {slice_name} on the dask cluster: {bound.describe()}"
            logger.info("%s", line)
            if self.report is not None:
                self.report(line)
            self.last_bound = bound
        total = _chunk_count(dataset)
        with _Watching(self.cluster, total, self.on_chunks):
            to_icechunk(dataset, session, **options)


def _chunk_count(dataset: xr.Dataset) -> int:
    return sum(
        math.prod(len(sizes) for sizes in variable.chunks)
        for variable in dataset.variables.values()
        if variable.chunks is not None
    )


class _Watching:
    """Reports the chunks stored so far (counted on the scheduler, see
    :mod:`versioncube.store.chunk_counter`) every half second while a write runs."""

    INTERVAL = 0.5

    def __init__(self, cluster: Cluster, total: int, report: ChunkProgress | None):
        self.cluster, self.total, self.report = cluster, total, report
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = 0

    def __enter__(self) -> _Watching:
        if self.report is not None and self.total:
            from versioncube.store.chunk_counter import stored_chunks

            self._start = stored_chunks(self.cluster.client)
            self.report(0, self.total)
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        from versioncube.store.chunk_counter import stored_chunks

        assert self.report is not None
        while not self._stop.wait(self.INTERVAL):
            try:
                done = stored_chunks(self.cluster.client) - self._start
            except Exception:  # the scheduler is busy or gone: the write itself will say
                continue
            self.report(max(0, min(done, self.total)), self.total)

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            if exc_info[0] is None and self.report is not None:
                self.report(self.total, self.total)
