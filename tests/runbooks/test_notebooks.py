"""The four runbooks run with papermill against a local stage, and fail loudly when they should."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from runbooks.execute import RunbookFailedError
from runbooks.shop import OrderFate
from runbooks.specs import SPECS

pytestmark = pytest.mark.runbooks

INLINE_IMAGE = '<img src="data:image/png;base64,'


def assert_readable_report(out: Path, name: str) -> None:
    """The HTML an operator opens: verdict first, every figure inline, no code, traceback, stderr, NaN or secret."""
    html = (out / f"{name}.html").read_text()
    figures = sorted(out.glob("*.png"))
    assert figures, "the notebook drew no figure"
    assert html.count(INLINE_IMAGE) >= len(figures), (len(figures), html.count(INLINE_IMAGE))
    assert "Verdict: PASS" in html and html.index("Verdict: PASS") < html.index(INLINE_IMAGE)
    assert "Traceback" not in html and "application/vnd.jupyter.stderr" not in html
    assert not re.search(r"\bNaN\b", html) and not re.search(r"\d[eE]-\d", _text(html))
    assert "jp-InputArea" not in html and "params.validate" not in html  # the code stays in the .ipynb
    for key, param in SPECS[name].items():
        if param.secret and param.default:
            assert str(param.default) not in html, key
            assert str(param.default) not in (out / f"{name}.ipynb").read_text(), key


def _text(html: str) -> str:
    """The report without its embedded images and styles, where an exponent would be a number shown."""
    html = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
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


def test_given_a_small_open_model_load_when_run_then_slos_hold_and_no_order_is_lost(
    run_runbook: Any, tmp_path: Path
) -> None:
    result = run_runbook("load_test", slo_p95_ms=10_000, slo_error_rate=0.0)
    assert result["ok"], result["slo"]
    assert result["generator"]["kept_up"]
    assert result["requests"] == sum(result["outcomes"].values()) == 15  # 2 rps for 8 s with a 1 s ramp
    latency = result["latency"]["latency_ms"]
    assert latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    pipeline = result["pipeline"]
    assert pipeline["ok"] and pipeline["accepted"] == pipeline["terminal"] > 0 and not pipeline["lost"]
    assert (tmp_path / "load_test" / "latency_over_time.png").is_file()
    assert_readable_report(tmp_path / "load_test", "load_test")


def test_given_the_authorizer_when_tuning_memory_then_choices_are_saved_and_memory_restored(
    run_runbook: Any, tmp_path: Path
) -> None:
    result = run_runbook("memory_tuning")
    assert result["function"].endswith("-jwt_auth")
    assert result["restored"] and not result["applied"]
    assert [s["memory_mb"] for s in result["sizes"]] == [128, 512, 1024]
    assert all(s["invocations"] == 5 and s["cold"] == 1 for s in result["sizes"])  # a size change discards environments
    assert all(s["cost_per_invocation"] >= 2e-7 for s in result["sizes"])  # the request charge is included
    assert set(result["choices"]) == {"cost", "speed", "balanced"}
    assert result["local_cpu_model"] is True
    assert result["saved_to"].endswith("memory-tuning/ecommerce-backend-local-jwt_auth/latest.json")
    assert result["optimizer_document"]["results"][0]["billed_ms_avg"] > 0
    assert_readable_report(tmp_path / "memory_tuning", "memory_tuning")


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
    with pytest.raises(RunbookFailedError, match=r"ThresholdError: .*p95 latency \d+ ms > SLO 1 ms"):
        run_runbook("load_test", duration_s=2.0, ramp_s=0.0, mix={"browse": 1}, slo_p95_ms=1)
    assert (tmp_path / "load_test" / "result.json").is_file()  # the results are written before it fails
    html = (tmp_path / "load_test" / "load_test.html").read_text()
    assert "Verdict: FAILED" in html and "Traceback" not in html  # the broken threshold, as one line
