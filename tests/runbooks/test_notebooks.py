"""The four runbooks run with papermill against a local stage, and fail loudly when they should."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runbooks.execute import PROJECT_DIR, RunbookFailedError, write_html
from runbooks.report import PROGRESS_ENV
from runbooks.shop import OrderFate
from runbooks.specs import SPECS
from tests.e2e.conftest import RunningStage

pytestmark = pytest.mark.runbooks

INLINE_IMAGE = re.compile(r'<img [^>]*src="data:image/png;base64,')
EXPONENT = re.compile(r"(?<![\w.-])\d+(\.\d+)?[eE][-+]?\d+(?![\w-])")  # 2.3e-07, not a UUID's "3e-4"


def assert_readable_report(out: Path, name: str, notebook: Path | None = None) -> None:
    """The HTML an operator opens: verdict first, every figure inline, no code, traceback, stderr, NaN or secret.

    ``out`` holds the PNGs the run wrote; the executed notebook and its HTML are ``out/<name>.ipynb``
    (``make runbooks``) or ``notebook`` (a papermill command's output path).
    """
    notebook = notebook or out / f"{name}.ipynb"
    html = notebook.with_suffix(".html").read_text()
    figures = sorted(out.glob("*.png"))
    assert figures, "the notebook drew no figure"
    images = [m.start() for m in INLINE_IMAGE.finditer(html)]
    assert len(images) >= len(figures), (len(figures), len(images))
    assert "Verdict: PASS" in html and html.index("Verdict: PASS") < images[0]
    text = _text(html)  # the template's CSS names stderr and errors: look at what the cells output
    assert "Traceback" not in text and "vnd.jupyter.stderr" not in text
    assert not re.search(r"\bNaN\b", text) and not EXPONENT.search(text)
    assert "hl-ipython3" not in text and "params.validate" not in text  # the code stays in the .ipynb
    for key, param in SPECS[name].items():
        if param.secret and param.default:  # the local sandbox default, as the stage the test runs has it
            assert str(param.default) not in html, key


def _text(html: str) -> str:
    """The report without its embedded images, styles and cell ids, where an exponent would be a number shown.

    nbconvert gives each cell a random hex id (``id="cell-id=516e3197"``), which can read as an exponent."""
    html = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    html = re.sub(r'id="cell-id=[0-9a-f-]*"', "", html)
    return re.sub(r"<style.*?</style>|<script.*?</script>", "", html, flags=re.S)


def test_given_orders_when_inspecting_the_workflow_then_statuses_timeline_retries_and_cost_show(
    seeded_orders: list[OrderFate], run_runbook: Any, tmp_path: Path
) -> None:
    result = run_runbook("workflow_inspection", max_failed_share=1.0)
    assert result["ok"] and result["executions"] >= len(seeded_orders)
    assert {"SUCCEEDED", "FAILED"} <= set(result["by_status"])
    chosen = result["chosen"]  # the latest failed execution, and the order it belongs to
    assert chosen["status"] == "FAILED" and chosen["order"]["status"] == "FAILED"
    assert chosen["order_id"] and chosen["error"]
    states = {row["state"]: row for row in result["per_state"]}
    assert {"ValidateOrder", "ReserveInventory", "SendConfirmation"} <= set(states)
    assert states["ProcessPayment"]["retries"] >= 1  # tok_gateway_timeout's Retry
    assert all(e["transitions"] > 0 and e["cost_usd"] > 0 for e in result["per_execution"])
    out = tmp_path / "workflow_inspection"
    for name in ("executions.csv", "states.csv", "timeline.png", "workflow_inspection.html"):
        assert (out / name).is_file(), name
    assert_readable_report(out, "workflow_inspection")


# -- the commands the README and docs/runbooks.md give, run as written ---------------------------------


def documented_commands(doc: str, start: str) -> list[str]:
    """Every command in ``doc``'s ``sh`` blocks that starts with ``start``, continuation lines joined."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", (PROJECT_DIR / doc).read_text(), flags=re.S):
        lines = block.splitlines()
        for index, line in enumerate(lines):
            if line.startswith(start):
                command, rest = line, iter(lines[index + 1 :])
                while command.rstrip().endswith("\\"):
                    command = command.rstrip()[:-1] + " " + next(rest).strip()
                commands.append(command)
    return commands


def run_documented(
    command: str, stage: RunningStage, cwd: Path, timeout_s: float = 300, env: dict[str, str] | None = None
) -> str:
    """``command`` from a fresh clone's root, as typed, except that it targets the test's stage.

    The checkout's paths become absolute so that the outputs land in ``cwd`` (not in the work tree),
    with the checkout on PYTHONPATH as when it is typed at the root; the stage's ports are given as
    the parameters a person would add (``make run`` listens on 8000/4566, this stage on free ports).
    """
    command = command.replace(".venv/bin/", f"{PROJECT_DIR}/.venv/bin/").replace(
        " notebooks/", f" {PROJECT_DIR}/notebooks/"
    )
    if "papermill" in command:
        command += f" -p api_url {stage.api_url} -p aws_endpoint_url {stage.aws_endpoint}"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR), **(env or {})}
    env.pop(PROGRESS_ENV, None)  # as typed: tqdm.auto's bar, not the one line runbooks.execute asks for
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_given_the_readmes_memory_tuning_command_then_the_order_consumer_is_tuned_with_a_real_order(
    seeded_orders: list[OrderFate], local_stage: RunningStage, tmp_path: Path
) -> None:
    # GIVEN the README's papermill line (process_order, sizes as a -p list) and finished orders
    [command] = documented_commands("README.md", "mkdir -p out && .venv/bin/papermill notebooks/memory_tuning")
    # WHEN it runs as typed, THEN every invocation handled the SQS batch and the result was saved
    run_documented(command, local_stage, tmp_path)
    out = tmp_path / "out" / "memory_tuning"
    result = json.loads((out / "result.json").read_text())
    assert result["ok"] and result["function"].endswith("-process_order")
    assert result["restored"] and not result["applied"]
    assert [s["memory_mb"] for s in result["sizes"]] == [128, 512, 1024]
    assert all(s["invocations"] == 5 and s["cold"] == 1 for s in result["sizes"])  # a size change discards environments
    assert all(s["cost_per_invocation"] >= 2e-7 for s in result["sizes"])  # the request charge is included
    assert set(result["choices"]) == {"cost", "speed", "balanced"} and result["strategy"] == "cost"
    assert result["local_cpu_model"] is True
    assert result["saved_to"].endswith("memory-tuning/ecommerce-backend-local-process_order/latest.json")
    assert result["optimizer_document"]["results"][0]["billed_ms_avg"] > 0
    # AND its report, rendered as make runbooks renders it, reads as one
    write_html(tmp_path / "out" / "memory_tuning.ipynb")
    assert_readable_report(out, "memory_tuning", tmp_path / "out" / "memory_tuning.ipynb")


def test_given_the_runbook_pages_small_open_model_load_then_slos_hold_and_no_order_is_lost(
    local_stage: RunningStage, tmp_path: Path
) -> None:
    # GIVEN docs/runbooks.md's papermill line (its mix given with -p as text)
    [command] = documented_commands("docs/runbooks.md", "mkdir -p out && .venv/bin/papermill")
    # WHEN it runs as typed against the stage
    run_documented(command, local_stage, tmp_path)
    # THEN the generator kept up, the SLOs held, and every accepted order ended, none lost
    out = tmp_path / "out" / "load_test"
    result = json.loads((out / "result.json").read_text())
    assert result["ok"], result["slo"]
    assert result["plan"]["mix"] == {"browse": 3, "order": 1} and result["generator"]["kept_up"]
    assert result["requests"] == sum(result["outcomes"].values()) == 15  # 2 rps for 8 s with a 1 s ramp
    latency = result["latency"]["latency_ms"]
    assert latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    pipeline = result["pipeline"]
    assert pipeline["ok"] and pipeline["accepted"] == pipeline["terminal"] > 0 and not pipeline["lost"]
    # AND its report, rendered as make runbooks renders it, reads as one
    write_html(tmp_path / "out" / "load_test.ipynb")
    assert_readable_report(out, "load_test", tmp_path / "out" / "load_test.ipynb")


def test_given_the_readmes_curl_walkthrough_then_every_step_answers_as_it_says(
    local_stage: RunningStage, tmp_path: Path
) -> None:
    # GIVEN the README's curl blocks, from "Try it with curl" to the card tokens, against this stage
    readme = (PROJECT_DIR / "README.md").read_text()
    section = readme[readme.index("### Try it with curl") : readme.index("Card tokens are sandbox tokens")]
    script = "\n".join(re.findall(r"```sh\n(.*?)```", section, flags=re.S))
    assert "API=http://127.0.0.1:8000" in script
    script = script.replace("API=http://127.0.0.1:8000", f"API={local_stage.api_url.rstrip('/')}")
    # WHEN it runs in bash, stopping at the first failing command
    output = run_documented(script, local_stage, tmp_path, timeout_s=180)
    # THEN the seeded category lists products, the upload is stored, and the big order hit the limit
    assert '"category":"gear"' in output.replace(" ", "") and re.search(r"(?<!\d)204\n", output), output
    assert '"failure_reason":"VALIDATION_FAILED"' in output.replace(" ", "")
    assert '"stock":40' in output.replace(" ", "")  # the admin's PATCH


def test_given_a_stage_with_traffic_when_analysing_cost_then_figures_agree_with_the_optimizer(
    seeded_orders: list[OrderFate], run_runbook: Any, tmp_path: Path
) -> None:
    result = run_runbook("cost_analysis")
    assert result["ok"] and result["optimizer_status"] == "ok"
    assert result["functions"] and all(row["agrees"] for row in result["functions"])
    total = sum(row["cost_usd"] for row in result["functions"])
    assert total == pytest.approx(result["optimizer_summary"]["total_cost_usd"], abs=1e-8)
    assert result["orders_in_window"] >= len(seeded_orders)
    assert result["cost_per_order"]["total"] > 0 and result["monthly"]["total_usd"] > 0
    assert_readable_report(tmp_path / "cost_analysis", "cost_analysis")


def test_given_an_unknown_parameter_then_the_run_fails_naming_it(run_runbook: Any) -> None:
    with pytest.raises(RunbookFailedError, match="ParameterError: unknown parameter 'rate_rsp'"):
        run_runbook("load_test", rate_rsp=5)


def test_given_an_slo_the_system_cannot_meet_then_the_run_fails_saying_which(run_runbook: Any, tmp_path: Path) -> None:
    password = SPECS["load_test"]["admin_password"].default  # given as a person would: a secret to keep
    with pytest.raises(RunbookFailedError, match=r"ThresholdError: .*p95 latency \d+ ms > SLO 1 ms"):
        run_runbook("load_test", duration_s=2.0, ramp_s=0.0, mix={"browse": 1}, slo_p95_ms=1, admin_password=password)
    out = tmp_path / "load_test"
    assert (out / "result.json").is_file()  # the results are written before it fails
    text = _text((out / "load_test.html").read_text())
    assert "Verdict: FAILED" in text and "p95 latency" in text
    assert "Traceback" not in text and password not in text  # the broken threshold as one line; no secret
    executed = json.loads((out / "load_test.ipynb").read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and all(password not in "".join(c["source"]) for c in injected)


def test_given_the_stages_environment_when_the_readmes_awslocal_runs_then_it_reaches_the_embedded_aws(
    local_stage: RunningStage, tmp_path: Path
) -> None:
    # GIVEN AWS_ENDPOINT_URL as .localstage/local.env sets it (here: this stage's port)
    [command] = documented_commands("README.md", ".venv/bin/awslocal sqs list-queues")
    # WHEN the README's command runs, THEN awslocal passed the endpoint on and the stage's queues answer
    output = run_documented(
        command.split("#")[0], local_stage, tmp_path, env={"AWS_ENDPOINT_URL": local_stage.aws_endpoint}
    )
    assert "ecommerce-backend-order-processing-local" in output
