"""The runbooks as code: each jupytext file and its .ipynb in sync, parameters cells that match the spec.

A notebook is edited as ``notebooks/<name>.py`` (percent format, linted and type-checked) and its
``.ipynb`` is regenerated with ``jupytext --sync notebooks/<name>.py``; these tests fail when one was
changed without the other, or when a parameters cell and ``runbooks.specs`` disagree.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import jupytext
import nbformat
import pytest

from runbooks.execute import ORDER, redact_secrets, report_notebook
from runbooks.specs import SPECS

pytestmark = pytest.mark.unit

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source.strip(), tuple(c.get("metadata", {}).get("tags", []))) for c in notebook.cells]


def test_given_the_runbooks_then_each_has_a_py_and_an_ipynb_and_nothing_else_is_there() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.py")) == sorted(ORDER) == sorted(SPECS)
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(ORDER)


@pytest.mark.parametrize("name", ORDER)
def test_given_a_paired_notebook_when_both_files_are_read_then_their_cells_are_the_same(name: str) -> None:
    # GIVEN the percent file operators' code is reviewed in, and the .ipynb papermill runs
    text = jupytext.read(NOTEBOOKS / f"{name}.py")
    ipynb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    # THEN they hold the same cells, tags included, and the .ipynb carries no outputs
    assert _cells(ipynb) == _cells(text), f"run: jupytext --sync notebooks/{name}.py"
    assert all(not c.get("outputs") for c in ipynb.cells if c.cell_type == "code")
    assert text.metadata["jupytext"]["formats"] == "ipynb,py:percent"


@pytest.mark.parametrize("name", ORDER)
def test_given_a_notebook_then_its_parameters_cell_holds_the_spec_defaults(name: str) -> None:
    notebook = jupytext.read(NOTEBOOKS / f"{name}.py")
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    values = {}
    for node in ast.parse(tagged[0].source).body:  # literals only: the cell is data
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target  # type: ignore[attr-defined]
        values[target.id] = ast.literal_eval(node.value)  # type: ignore[arg-type]
    assert values == {key: param.default for key, param in SPECS[name].items()}
    assert sum("verdict" in c.metadata.get("tags", []) for c in notebook.cells) == 1


def test_given_an_executed_notebook_when_reported_then_the_verdict_follows_the_title_and_errors_are_one_line() -> None:
    # GIVEN a title, a body cell and a verdict cell whose threshold broke
    error = nbformat.v4.new_output(
        "error", ename="ThresholdError", evalue="p95 latency 900 ms > SLO 1 ms", traceback=["frame 1", "frame 2"]
    )
    verdict = nbformat.v4.new_code_cell("report.verdict(...)", metadata={"tags": ["verdict"]}, outputs=[error])
    document = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# Load test"), nbformat.v4.new_code_cell("body()"), verdict]
    )
    # WHEN it is prepared for the HTML report
    shown = report_notebook(document)
    # THEN the verdict comes right after the title, its error as one line without frames
    assert [c.source for c in shown.cells] == ["# Load test", "report.verdict(...)", "body()"]
    assert shown.cells[1].outputs[0]["traceback"] == ["ThresholdError: p95 latency 900 ms > SLO 1 ms"]


def test_given_an_injected_secret_when_redacted_then_the_executed_notebook_no_longer_holds_it(tmp_path: Path) -> None:
    injected = nbformat.v4.new_code_cell(
        'api_url = "http://127.0.0.1:8000"\nadmin_password = "Hunter-2-secret"',
        metadata={"tags": ["injected-parameters"]},
    )
    path = tmp_path / "load_test.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[injected]), path)
    redact_secrets(path, SPECS["load_test"])
    text = path.read_text()
    assert "Hunter-2-secret" not in text
    assert "http://127.0.0.1:8000" in text and "admin_password" in text


def test_given_a_kernel_when_a_runbook_draws_a_figure_then_it_shows_inline_once_with_alt_text(tmp_path: Path) -> None:
    # GIVEN a cell as the runbooks write it, run by a kernel as JupyterLab or papermill runs it
    from nbclient import NotebookClient

    source = (
        "from runbooks import plots\nfrom runbooks.outputs import Outputs\n"
        "out = Outputs('figs')\nout.figure('counts.png', plots.status_counts({'SUCCEEDED': 3, 'FAILED': 1}, 'By status'))"
    )
    document = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    document.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    # WHEN it runs (the kernel's default matplotlib backend, whatever it is)
    NotebookClient(
        document, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute(env={**os.environ, "PYTHONPATH": str(NOTEBOOKS.parent)})
    # THEN the figure is one inline image, saved too, with its title as alternative text, and no stderr
    outputs = document.cells[0].outputs
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1 and (tmp_path / "figs" / "counts.png").is_file()
    assert 'alt="By status"' in images[0]["data"]["text/html"]
    assert not [o for o in outputs if o.get("name") == "stderr" or o["output_type"] == "error"], outputs
