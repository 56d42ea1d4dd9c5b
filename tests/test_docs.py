"""The docs cannot drift: reference pages are regenerated and compared, code blocks are run."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _generator():
    return runpy.run_path(str(ROOT / "docs" / "generate_reference.py"))


@pytest.mark.parametrize("page", ["cli.md", "configuration.md"])
def test_reference_pages_are_up_to_date(page):
    render = _generator()["PAGES"][page]
    assert (ROOT / "docs" / page).read_text() == render(), f"run `make docs` to update {page}"


def test_every_command_is_in_the_readme_and_the_reference():
    from versioncube.cli import cli

    readme = (ROOT / "README.md").read_text()
    reference = (ROOT / "docs" / "cli.md").read_text()
    for name in cli.list_commands(None):
        assert f"versioncube {name}" in readme, name
        assert f"## versioncube {name}" in reference, name


@pytest.mark.parametrize(
    ("page", "index"),
    [
        (page.relative_to(ROOT).as_posix(), index)
        for page in DOC_PAGES
        for index, _ in enumerate(PYTHON_BLOCK.findall(page.read_text()))
    ],
)
def test_python_blocks_run(page, index):
    code = PYTHON_BLOCK.findall((ROOT / page).read_text())[index]
    exec(compile(code, f"{page}[block {index}]", "exec"), {})


def test_all_docs_pages_are_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in readme, page.name
