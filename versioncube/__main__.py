"""``python -m versioncube`` runs the command line."""

from versioncube.cli import main

main()
