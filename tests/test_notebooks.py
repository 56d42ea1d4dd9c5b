"""The example notebooks in examples/: stored without outputs, and each runs from top to bottom
(with nbclient, on an IPython kernel of this environment, in a fresh folder).

A new notebook needs nothing here: every ``examples/*.ipynb`` is found, checked and run.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))
#: Each notebook's cells run within this many seconds (they take a few on this machine).
CELL_TIMEOUT = 300


def test_there_are_notebooks():
    names = {path.name for path in NOTEBOOKS}
    assert {"growing-a-cube.ipynb", "versions-and-time-travel.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebooks_are_stored_without_outputs(path):
    """Outputs and execution counts stay out of the repository: diffs show code, not images
    (clear them with Jupyter's "Clear All Outputs" before committing)."""
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} has outputs"
            assert cell.execution_count is None, f"{path.name} cell {index} has a count"
        assert "execution" not in cell.metadata, f"{path.name} cell {index} has timings"
    assert notebook.metadata.kernelspec.name == "python3"
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")


@pytest.mark.slow  # a kernel and real appends: several seconds each
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebooks_run(path, tmp_path):
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError naming the cell that failed
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors
    images = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert images, f"{path.name} draws no picture"
