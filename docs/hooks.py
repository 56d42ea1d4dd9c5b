"""mkdocs hooks: the site's home page is the README, with its links to docs/ made site links.

The README stays the one place the quick start is written; GitHub shows it at the repository's
root, the site at its home page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

README = Path(__file__).resolve().parent.parent / "README.md"
#: ``](docs/concepts.md#x)`` -> ``](concepts.md#x)``: README links to pages of the site.
DOCS_LINK = re.compile(r"\]\(docs/")


def home_page(readme: str) -> str:
    """The README as the site's home page."""
    return DOCS_LINK.sub("](", readme)


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "index.md", content=home_page(README.read_text())))
    return files
