"""Reading the next slice file while the one before it is appended.

A serial run of files spends about half of each append opening and decoding the file (zlib
in NetCDF4 files) and the other half encoding, writing and committing it. Both halves mostly
run outside Python's lock, so a run reads the next file in a background thread while it
writes and commits the current one: appending archive-like files (three 720 x 1440 fields,
zlib) went from 106 to 78-80 ms per file on 2 cores (docs/performance.md).

What it keeps exact:

- the next file is read only once the current one is found new (a resumed run that skips the
  slices the cube holds reads nothing ahead), and only from a list of slices given in full (a
  generator is never asked for its next item early);
- the file's content stamp is taken before it is read, and the append uses what was read only
  if the stamp is still the same in its turn, else it reads the file again: the data committed
  is never older than the stamp the ledger records for it;
- a read that fails is forgotten: the append reads the file itself and reports what it finds;
- at most one slice is held ahead, and only one :func:`~versioncube.slices.opening.open_slice`
  would load into memory anyway (up to ``LOAD_LIMIT_BYTES``);
- only after a slice of at least :data:`MIN_BYTES`: for small files the Python work of
  opening one competes with the append's and reading ahead costs more than it saves.

The file libraries (netCDF-C and HDF5 under xarray) are not safe to use from two threads at
once: a test that wrote a NetCDF file while another was read in the background crashed the
process. So the background read runs only while this process writes and commits a slice that
is in memory with its file closed (:meth:`ReadAhead.alongside`), and it is finished before the
append returns: the caller's code between appends, and any file this process opens itself,
never meet it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator
from typing import Any

import xarray as xr

from versioncube.slices.identity import SliceRef, slice_ref
from versioncube.slices.opening import SliceData, in_memory, read_into_memory
from versioncube.slices.options import SliceOptions

logger = logging.getLogger(__name__)

#: Files are read ahead only after a slice of at least this many bytes in memory. Opening a file
#: costs about 10 ms of Python work in xarray whatever its size, which competes with the append
#: for Python's lock: with slices of 0.5 MB, reading ahead made a run 7% slower (26-29 against
#: 28-31 ms per file); with slices of 12.4 MB, whose decoding runs outside that lock, 25-35%
#: faster.
MIN_BYTES = 4 * 2**20


@dataclasses.dataclass(frozen=True)
class _Ahead:
    """A file being read in the background, with what it was read with."""

    location: str
    options: SliceOptions
    stamp: str | None  # taken before the read: the data read is at least this new
    read: concurrent.futures.Future[xr.Dataset | None]


class ReadAhead:
    """Reads the slice after the current one in a background thread (module docstring)."""

    def __init__(self) -> None:
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._upcoming: Any = None  # the item after the one being appended
        self._ahead: _Ahead | None = None

    @contextlib.contextmanager
    def alongside(
        self, opened: SliceData, ref: SliceRef, options: SliceOptions, append_dim: str | None
    ) -> Iterator[None]:
        """While the current slice, ``opened``, is written and committed, read the upcoming
        file in the background, if ``opened`` is a file's data in memory with its file closed
        (:func:`~versioncube.slices.opening.in_memory`) and big enough; the read is finished
        at the end of the ``with`` block."""
        if in_memory(opened, ref, options) and opened.nbytes >= MIN_BYTES:
            self.start(options, append_dim)
        try:
            yield
        finally:
            self.settle()

    def upcoming(self, item: Any) -> None:
        """Name the item that follows the one about to be appended (None: none does)."""
        self._upcoming = item

    def start(self, options: SliceOptions, append_dim: str | None = None) -> None:
        """Begin reading the upcoming item, when it is a file (a path or URI), with
        ``options`` (those of the current slice; :meth:`take` checks that its own are the
        same)."""
        item, self._upcoming = self._upcoming, None
        if not isinstance(item, str | os.PathLike):
            return
        try:
            ref = slice_ref(item, options, append_dim=append_dim)
        except Exception:  # not a slice: its own turn says so
            return
        if ref.location is None:
            return
        self.settle()  # one read at a time
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="versioncube-read-ahead"
            )
        stamp = ref.stamp(options.storage_options)
        read = self._pool.submit(read_into_memory, ref, options)
        self._ahead = _Ahead(ref.location, options, stamp, read)
        logger.debug("reading %s ahead", ref.name)

    def take(self, ref: SliceRef, options: SliceOptions, stamp: str | None) -> xr.Dataset | None:
        """The slice read ahead for ``ref``, if it was read with ``options`` and its stamp
        is still ``stamp``; None otherwise (the append reads it itself). Either way no read is
        under way when it returns."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return None
        read = _finished(ahead)
        same = ahead.location == ref.location and _reads_alike(ahead.options, options, read)
        if not same or ahead.stamp is None or ahead.stamp != stamp:
            logger.debug("%s: not using what was read ahead of %s", ref.name, ahead.location)
            return None
        return read

    def settle(self) -> None:
        """Wait until the read under way, if any, is done (what it read is kept)."""
        if self._ahead is not None:
            _finished(self._ahead)

    def close(self) -> None:
        """Stop: wait for a read under way, and forget what was read ahead and what was to
        come (the next run starts afresh)."""
        self.settle()
        self._ahead = self._upcoming = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _reads_alike(read_with: SliceOptions, wanted: SliceOptions, read: xr.Dataset | None) -> bool:
    """Whether a file read with ``read_with`` gave what ``wanted`` gives. A file read as it
    holds it (``groups`` None, as for the first slice of a new cube) that gave a dataset has no
    groups, so it reads the same as a dataset (``groups`` False, the later slices')."""
    if read_with == wanted:
        return True
    if read is None or read_with.groups is not None or wanted.groups is not False:
        return False
    return dataclasses.replace(read_with, groups=False) == wanted


def _finished(ahead: _Ahead) -> xr.Dataset | None:
    """What ``ahead`` read, once its read is done (never raises: a failed read read nothing)."""
    try:
        return ahead.read.result()
    except Exception:  # cancelled: the append reads the file itself
        return None
