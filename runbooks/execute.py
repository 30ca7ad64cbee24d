"""Run the runbooks with papermill and render each executed notebook to HTML.

``python -m runbooks.execute`` (what ``make runbooks`` runs) executes all four against the stage
given by ``--api-url``/``--aws-endpoint-url``, or else starts a local stage on free ports, seeds a
few orders, and runs them there with the small CI-sized parameters of ``QUICK``. Each runbook gets
its own folder: the executed ``.ipynb``, its ``.html``, and the ``result.json``, CSVs and PNGs it
wrote next to it.

The HTML is the report an operator reads: the code is left out (the executed ``.ipynb`` keeps it),
the cell tagged ``verdict`` comes first, right under the title, and a threshold or parameter failure
shows as its one-line message, not a traceback. A secret parameter's value (``Param.secret``) is
replaced in the executed notebook's injected-parameters cell, so neither file carries it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runbooks.params import Param
from runbooks.report import PROGRESS_ENV
from runbooks.specs import SPECS

PROJECT_DIR = Path(__file__).resolve().parents[1]
NOTEBOOKS = PROJECT_DIR / "notebooks"
ORDER = ("workflow_inspection", "load_test", "memory_tuning", "cost_analysis")  # cost last: it sees the others
KERNEL = "python3"  # the virtualenv's own kernelspec (.venv/share/jupyter/kernels/python3)
SEED_TOKENS = ("tok_success", "tok_declined", "tok_gateway_timeout", "tok_pending", "tok_success")

QUICK: dict[str, dict[str, Any]] = {  # CI-sized: the four together in about a minute
    "workflow_inspection": {"max_executions": 10},
    "load_test": {"rate_rps": 2.0, "duration_s": 8.0, "ramp_s": 1.0, "pipeline_bound_s": 45.0},
    "memory_tuning": {"memory_sizes": [128, 512, 1024], "invocations": 5},
    "cost_analysis": {"window_days": 1, "sample_executions": 10},
}


class RunbookFailedError(RuntimeError):
    """A runbook's papermill run failed; the message carries the notebook's own error."""


def run_notebook(
    name: str, out_dir: Path, parameters: Mapping[str, Any], *, timeout_s: int = 600, html: bool = True
) -> dict[str, Any]:
    """Execute ``notebooks/<name>.ipynb`` into ``out_dir`` and return its ``result.json``.

    Outputs go next to the executed notebook (``output_dir='.'``, run with ``cwd=out_dir``). The
    HTML is written even when the run fails, so the failure can be read where it happened.
    """
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / f"{name}.ipynb"
    path = os.environ.get("PYTHONPATH", "")
    if str(PROJECT_DIR) not in path.split(os.pathsep):  # the kernel imports runbooks from this checkout
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_DIR), path) if p)
    os.environ.setdefault(PROGRESS_ENV, "final")  # the kernel inherits it: one line per loop, no bar
    try:
        papermill.execute_notebook(
            str(NOTEBOOKS / f"{name}.ipynb"),
            str(executed),
            parameters={"output_dir": ".", **parameters},
            kernel_name=KERNEL,
            cwd=str(out_dir),
            progress_bar=False,
            execution_timeout=timeout_s,
        )
    except papermill.PapermillExecutionError as exc:
        raise RunbookFailedError(f"{name}: {exc.ename}: {exc.evalue}") from exc
    finally:
        if executed.exists():
            redact_secrets(executed, SPECS[name])
            if html:
                write_html(executed)
    return dict(json.loads((out_dir / "result.json").read_text()))


def redact_secrets(notebook: Path, spec: Mapping[str, Param]) -> None:
    """Replace each secret parameter's value in papermill's injected-parameters cell."""
    import nbformat

    secrets = [name for name, param in spec.items() if param.secret]
    document = nbformat.read(str(notebook), as_version=4)
    changed = False
    for cell in document.cells:
        if "injected-parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        lines = cell.source.splitlines()
        for index, line in enumerate(lines):
            if any(line.startswith(f"{secret} = ") for secret in secrets):
                lines[index] = line.split(" = ", 1)[0] + ' = "(redacted)"'
                changed = True
        cell.source = "\n".join(lines)
    if changed:
        nbformat.write(document, str(notebook))


# Errors whose message is the whole story for an operator: shown as one line, without a traceback.
OPERATOR_ERRORS = ("ThresholdError", "ParameterError")


def report_notebook(document: Any) -> Any:
    """The executed notebook as the report shows it: the verdict cell first, operator errors in one line."""
    cells = list(document.cells)
    verdicts = [c for c in cells if "verdict" in c.get("metadata", {}).get("tags", [])]
    rest = [c for c in cells if c not in verdicts]
    title = next((i for i, c in enumerate(rest) if c.cell_type == "markdown" and c.source.startswith("# ")), -1)
    document.cells = rest[: title + 1] + verdicts + rest[title + 1 :]
    for cell in document.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") in OPERATOR_ERRORS:
                output["traceback"] = [f"{output['ename']}: {output['evalue']}"]
    return document


def write_html(notebook: Path) -> Path:
    """``<notebook>.html``: no code, no prompts, the verdict under the title (``report_notebook``)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(report_notebook(nbformat.read(str(notebook), as_version=4)))
    target = notebook.with_suffix(".html")
    target.write_text(body)
    return target


def run_all(
    out_root: Path, common: Mapping[str, Any], names: Sequence[str] = ORDER, quick: bool = True
) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    for name in names:
        started = time.monotonic()
        try:
            run_notebook(name, out_root / name, {**common, **(QUICK[name] if quick else {})})
            outcomes[name] = f"ok in {time.monotonic() - started:.0f} s"
        except RunbookFailedError as exc:
            outcomes[name] = f"FAILED: {exc}"
        print(f"{name}: {outcomes[name]}  ({out_root / name / (name + '.html')})", flush=True)
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-url", default=os.environ.get("API_URL", ""))
    parser.add_argument("--aws-endpoint-url", default=os.environ.get("RUNBOOK_AWS_ENDPOINT_URL", ""))
    parser.add_argument("--stage", default=os.environ.get("STAGE", "local"))
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "build" / "runbooks")
    parser.add_argument("--only", nargs="*", choices=ORDER, default=list(ORDER))
    parser.add_argument("--full", action="store_true", help="the notebooks' own defaults, not the CI-sized ones")
    args = parser.parse_args(argv)
    if args.api_url:
        common = {"api_url": args.api_url, "aws_endpoint_url": args.aws_endpoint_url, "stage": args.stage}
        outcomes = run_all(args.out, {**common, "region": args.region}, args.only, quick=not args.full)
    else:
        from localstage.process import FAST_RETRIES, stage_process
        from runbooks.shop import seed_orders

        # A fresh clone needs nothing running: a stage on free ports for this run, stopped after it.
        with stage_process(args.out / "stage", FAST_RETRIES) as stage:
            print(f"local stage up: {stage.api_url}, AWS {stage.aws_endpoint_url}; seeding orders", flush=True)
            seed_orders(stage.api_url, SEED_TOKENS)
            common = {"api_url": stage.api_url, "aws_endpoint_url": stage.aws_endpoint_url, "stage": "local"}
            outcomes = run_all(args.out, common, args.only, quick=not args.full)
    return 0 if all(o.startswith("ok") for o in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
