"""Where the cube is kept: target URI -> Icechunk storage and repository, the one commit loop
(retries, the local-disk lock), opening a version as a dataset, the fork guard, and the one
place that translates Icechunk, Zarr, xarray and OS errors into versioncube's."""
