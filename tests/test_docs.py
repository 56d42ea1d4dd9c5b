"""The docs cannot drift: reference pages are regenerated and compared, code blocks are run,
and the site builds strictly.

Code blocks: ```python blocks run, the `$ ` lines of ```console blocks run, and every ```sh
block (```bash, ```shell alike) runs as a script, in order, in a fresh folder with this
environment's commands on PATH, unless the line right above it says why it cannot run here:
``<!-- not run: needs an S3 bucket -->``.
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from versioncube.testing.bad_inputs import SEEN

ROOT = Path(__file__).resolve().parent.parent
DOC_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _generator():
    return runpy.run_path(str(ROOT / "docs" / "generate_reference.py"))


@pytest.mark.parametrize(
    "page",
    [
        "cli.md",
        "configuration.md",
        "api.md",
        # bad-input.md tries every case of the catalogue against a cube of its own (> 2 s),
        # but those tests/test_bad_input.py tried in this process already (with pytest-xdist:
        # in the same worker, their group) are taken from what it saw, the same way
        pytest.param(
            "bad-input.md", marks=[pytest.mark.slow, pytest.mark.xdist_group("bad-input")]
        ),
    ],
)
def test_reference_pages_are_up_to_date(page):
    render = _generator()["PAGES"][page]
    rendered = render(known=SEEN) if page == "bad-input.md" else render()
    assert (ROOT / "docs" / page).read_text() == rendered, f"run `make docs` to update {page}"


def test_every_command_is_in_the_readme_and_the_reference():
    from versioncube.cli import cli

    readme = (ROOT / "README.md").read_text()
    reference = (ROOT / "docs" / "cli.md").read_text()
    for name in cli.list_commands(None):
        assert f"versioncube {name}" in readme, name
        assert f"## versioncube {name}" in reference, name


#: A code block: the `<!-- not run: REASON -->` line above it (if any), its kind, its code.
BLOCK = re.compile(
    r"(?:^<!-- not run: (?P<reason>.*?) -->\n)?^```(?P<kind>python|console|sh|bash|shell)\n"
    r"(?P<code>.*?)^```",
    re.DOTALL | re.MULTILINE,
)
SHELLS = ("sh", "bash", "shell")


def _blocks(page: str) -> list[re.Match[str]]:
    return list(BLOCK.finditer((ROOT / page).read_text()))


def _example_pages():
    """The pages with code blocks; console and sh blocks run commands in subprocesses: slow."""
    for page in DOC_PAGES:
        name = page.relative_to(ROOT).as_posix()
        blocks = _blocks(name)
        if blocks:
            commands = any(block["kind"] != "python" and not block["reason"] for block in blocks)
            yield pytest.param(name, marks=[pytest.mark.slow] if commands else [])


@pytest.mark.parametrize("page", list(_example_pages()))
def test_examples_run(page, tmp_path, monkeypatch):
    """Each page's python blocks, the `$ ` commands of its console blocks and its sh blocks
    (those not marked as not runnable here) run in order in a fresh folder, as a reader would
    run them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for index, block in enumerate(_blocks(page)):
        kind, code = block["kind"], block["code"]
        if block["reason"]:
            continue
        if kind == "python":
            exec(compile(code, f"{page}[block {index}]", "exec"), {})
        elif kind in SHELLS:
            run = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", code], capture_output=True, text=True
            )
            assert run.returncode == 0, f"{page} block {index}:\n{code}\n{run.stderr}"
        else:
            for line in code.splitlines():
                if line.startswith("$ "):
                    run = subprocess.run(line[2:], shell=True, capture_output=True, text=True)
                    assert run.returncode == 0, f"{page}: {line}\n{run.stderr}"


@pytest.mark.parametrize("page", [page.relative_to(ROOT).as_posix() for page in DOC_PAGES])
def test_every_shell_block_runs_or_says_why_not(page):
    """A shell block is a script the tests run; one that cannot run here (an S3 bucket, minutes
    of benchmarks) says so on the line above it, with its reason."""
    text = (ROOT / page).read_text()
    fences = re.findall(r"^```(sh|bash|shell|zsh|console)\s*$", text, re.MULTILINE)
    found = _blocks(page)
    assert len(fences) == len([b for b in found if b["kind"] != "python"]), (
        f"{page}: a shell block the tests do not recognise (use ```sh)"
    )
    for block in found:
        if block["reason"] is not None:
            assert block["reason"].strip(), f"{page}: `not run` without a reason"
        if block["kind"] in SHELLS and not block["reason"]:
            prompts = [line for line in block["code"].splitlines() if line.startswith("$ ")]
            assert not prompts, f"{page}: an sh block is a script: use ```console for prompts"


@pytest.mark.slow  # mkdocs with mkdocstrings and the notebooks: several seconds
def test_the_site_builds_strictly(tmp_path):
    """`mkdocs build --strict`: every page in the nav exists, every link and anchor resolves,
    the API reference's names import, the notebooks render (they run in test_notebooks.py)."""
    site = tmp_path / "site"
    environment = {**os.environ, "VERSIONCUBE_DOCS_EXECUTE": "false", "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=environment,
    )
    assert run.returncode == 0, run.stderr
    home = (site / "index.html").read_text()
    assert "Grow a Zarr datacube slice by slice" in home  # the README
    assert 'href="concepts/#time-labels"' in home  # its links to docs/ made site links
    for page in ("cli", "configuration", "api", "bad-input", "notebooks", "python-api"):
        assert (site / page / "index.html").exists(), page
    api = (site / "api" / "index.html").read_text()
    assert "plot_history" in api and "RetryPolicy" in api  # docstrings rendered
    for notebook in (ROOT / "examples").glob("*.ipynb"):
        assert (site / "examples" / notebook.stem / "index.html").exists(), notebook.name


def test_the_site_shows_every_page_of_the_docs():
    """Every docs/*.md page is in mkdocs.yml's navigation (so it is reachable on the site),
    and so is every notebook."""
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert f": {page.name}" in nav, page.name
    for notebook in (ROOT / "examples").glob("*.ipynb"):
        assert f"examples/{notebook.name}" in nav, notebook.name


def test_all_docs_pages_are_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in readme, page.name
