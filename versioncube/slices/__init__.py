"""Slices: a slice item (path, URI, Dataset, slice-source arguments) -> a reference with an exact
identity (:mod:`~versioncube.slices.identity`), opened as a dataset
(:mod:`~versioncube.slices.opening`), from user code where configured
(:mod:`~versioncube.slices.sources`)."""
