"""runbooks.report, params and payloads: numbers for people, -p values as papermill gives them, safe payloads."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest

from runbooks import params, payloads, report
from runbooks.specs import SPECS

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("2.29687559375E-7"), "$0.000000230"),
        (Decimal("0E-10"), "$0.00"),
        (1234.5, "$1,234.50"),
        (0.004, "$0.00400"),
        (math.nan, "no data"),
        (None, "no data"),
    ],
)
def test_given_a_dollar_amount_then_it_shows_with_its_currency_and_no_exponent(value: Any, shown: str) -> None:
    assert report.usd(value) == shown


def test_given_table_cells_then_kinds_follow_the_column_names_and_nothing_reads_nan() -> None:
    assert report.cell("p95_ms", 2345.678) == "2,346 ms"
    assert report.cell("duration_ms", 3.25) == "3.2 ms"
    assert report.cell("memory_mb", 512) == "512 MB"
    assert report.cell("duration_s", 1.5) == "1.5 s"
    assert report.cell("gb_seconds", Decimal("2E-7")) == "0.0000002"
    assert report.cell("p50_ms", math.nan) == "no data"
    assert report.cell("agrees", True) == "yes"
    assert report.cell("duration_ms_trimmed_mean", 24.14) == "24 ms"
    assert report.cell("memory_used_share", 0.304) == "30.4 %"


def test_given_rows_when_rendered_then_the_table_scrolls_and_an_empty_one_says_why() -> None:
    html = report.table_html([{"function": "<stage>-jwt_auth", "cost_usd": 1e-7}])
    assert "overflow-x: auto" in html and "&lt;stage&gt;" in html and "$0.000000100" in html
    assert "e-07" not in html and "NaN" not in html
    assert "No executions in the window" in report.table_html([], empty="No executions in the window")


def test_given_a_headless_run_when_a_loop_ends_then_progress_is_one_final_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(report.PROGRESS_ENV, "final")
    assert list(report.tracked(range(3), 3, "histories")) == [0, 1, 2]
    out = capsys.readouterr()
    assert out.out.count("\n") == 1 and out.out.startswith("histories: 3/3 in ") and out.err == ""


def test_given_papermill_p_values_as_text_when_validated_then_lists_and_mappings_are_read_back() -> None:
    # GIVEN what `-p memory_sizes "[128, 256]" -p mix '{"browse": 1}'` injects: strings
    spec = SPECS["memory_tuning"]
    namespace = {name: p.default for name, p in spec.items()} | {"memory_sizes": "[128, 256]"}
    # WHEN validated, THEN they are the values the user meant
    assert params.validate(namespace, (), spec)["memory_sizes"] == [128, 256]
    load = {name: p.default for name, p in SPECS["load_test"].items()} | {"mix": '{"browse": 1}'}
    assert params.validate(load, (), SPECS["load_test"])["mix"] == {"browse": 1}
    with pytest.raises(params.ParameterError, match=r"memory_sizes.*must be a list"):
        params.validate(namespace | {"memory_sizes": "128 and 256"}, (), spec)


def test_given_a_bad_secret_parameter_then_the_error_does_not_print_its_value() -> None:
    spec = SPECS["load_test"]
    namespace = {name: p.default for name, p in spec.items()} | {"admin_password": 12345678}
    with pytest.raises(params.ParameterError) as caught:
        params.validate(namespace, (), spec)
    assert "admin_password" in str(caught.value) and "12345678" not in str(caught.value)


class _Orders:
    """A DynamoDB client's scan over a two-page orders table."""

    def __init__(self) -> None:
        self.pages = [
            {
                "Items": [{"order_id": {"S": "ord_old"}, "created_at": {"S": "2026-01-01"}}],
                "LastEvaluatedKey": {"k": 1},
            },
            {"Items": [{"order_id": {"S": "ord_new"}, "created_at": {"S": "2026-02-01"}}]},
        ]

    def scan(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["TableName"] == "ecommerce-backend-orders-local"
        return self.pages.pop(0)


def test_given_process_order_when_no_payload_is_given_then_it_gets_an_sqs_batch_naming_a_real_order() -> None:
    chosen = payloads.default_payloads("ecommerce-backend-local-process_order", "local", "us-east-1", "1", _Orders())
    record = chosen[0]["payload"]["Records"][0]
    assert json.loads(record["body"]) == {"order_id": "ord_new"}  # the newest finished order
    assert record["eventSource"] == "aws:sqs" and record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["eventSourceARN"].endswith(":1:ecommerce-backend-order-processing-local")


def test_given_other_functions_then_the_authorizer_gets_a_token_event_and_a_refund_needs_a_payload() -> None:
    jwt = payloads.default_payloads("ecommerce-backend-local-jwt_auth", "local", "us-east-1", "1", None)
    assert jwt[0]["payload"]["type"] == "TOKEN"
    task = payloads.default_payloads("ecommerce-backend-local-process_payment", "local", "us-east-1", "1", _Orders())
    assert task[0]["payload"]["order_id"] == "ord_new"
    with pytest.raises(params.ParameterError, match="no default payload"):
        payloads.default_payloads("ecommerce-backend-local-refund_payment", "local", "us-east-1", "1", _Orders())
