"""The docs cannot drift: reference pages are regenerated and compared, code blocks are run."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _generator():
    return runpy.run_path(str(ROOT / "docs" / "generate_reference.py"))


@pytest.mark.parametrize(
    "page",
    # bad-input.md tries every case of the catalogue against a cube of its own (> 2 s)
    ["cli.md", "configuration.md", pytest.param("bad-input.md", marks=pytest.mark.slow)],
)
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


BLOCK = re.compile(r"```(python|console)\n(.*?)```", re.DOTALL)


def _example_pages():
    """The pages with code blocks; console blocks run each command in a subprocess: slow."""
    for page in DOC_PAGES:
        text = page.read_text()
        if BLOCK.search(text):
            marks = [pytest.mark.slow] if "```console" in text else []
            yield pytest.param(page.relative_to(ROOT).as_posix(), marks=marks)


@pytest.mark.parametrize("page", list(_example_pages()))
def test_examples_run(page, tmp_path, monkeypatch):
    """Each page's python blocks, and the `$ ` commands of its console blocks, run in order in
    a fresh folder, as a reader would run them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for index, (kind, code) in enumerate(BLOCK.findall((ROOT / page).read_text())):
        if kind == "python":
            exec(compile(code, f"{page}[block {index}]", "exec"), {})
            continue
        for line in code.splitlines():
            if line.startswith("$ "):
                run = subprocess.run(line[2:], shell=True, capture_output=True, text=True)
                assert run.returncode == 0, f"{page}: {line}\n{run.stderr}"


def test_all_docs_pages_are_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in readme, page.name
