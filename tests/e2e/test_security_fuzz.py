"""Fuzzing the running local stage against docs/openapi.json with schemathesis.

Every operation gets schema-conforming (positive) and schema-breaking (negative) requests,
sent as the seeded admin so the admin-only bodies are parsed too. Each response must not
be a 5xx, must have a documented status, and must match the documented body. The run is
sized by ``FUZZ_REQUESTS`` (``make test``: 240, ``make fuzz``: 1,200) and seeded, so a
failure reproduces.

A separate stage: the fuzzer creates products at random, which other tests of the
session stage would see in their listings.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from scripts.openapi import DOCUMENT_PATH
from tests.e2e.conftest import RunningStage
from tests.e2e.stage_process import separate_stage

pytestmark = pytest.mark.e2e

DEFAULT_REQUESTS = 240
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@dataclass
class FuzzRun:
    sent: int = 0
    seconds_in_calls: float = 0.0
    unsatisfiable: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def fuzz_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStage]:
    # tracemalloc off: it doubles the emulator's time per request, and memory is not what is tested here.
    with separate_stage(tmp_path_factory.mktemp("fuzz-stage"), {"LOCAL_LAMBDA_MEASURE_MEMORY": "0"}) as stage:
        yield stage


def _admin_headers(stage: RunningStage) -> dict[str, str]:
    login = httpx.post(
        f"{stage.api_url}/auth/login", json={"email": stage.admin_email, "password": stage.admin_password}, timeout=10
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def _fuzz_operation(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    examples: int,
    round_seed: int,
    stage: RunningStage,
    auth: dict[str, str],
    run: FuzzRun,
) -> None:
    session = requests.Session()

    @seed(round_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case: schemathesis.Case) -> None:
        headers = auth if operation.definition.raw.get("security") else {}
        run.sent += 1
        started = time.monotonic()
        case.call_and_validate(base_url=stage.api_url, session=session, headers=headers, checks=CHECKS, timeout=30)
        run.seconds_in_calls += time.monotonic() - started

    try:
        send()
    except Unsatisfiable:
        run.unsatisfiable.append(f"{operation.label} ({mode.value})")  # e.g. GET /health has no input to break
    except Exception as exc:  # every operation is fuzzed even after one fails; all failures are reported
        run.failures.append(f"{operation.label} ({mode.value}): {exc}")


def test_given_the_openapi_document_when_fuzzing_the_stage_then_no_5xx_and_every_answer_is_documented(
    fuzz_stage: RunningStage,
) -> None:
    target = int(os.environ.get("FUZZ_REQUESTS", DEFAULT_REQUESTS))
    schema = schemathesis.openapi.from_path(Path(DOCUMENT_PATH))
    operations = [result.ok() for result in schema.get_all_operations()]
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    auth = _admin_headers(fuzz_stage)
    run = FuzzRun()
    # Small operations (GET /health) exhaust their inputs early; further rounds with new seeds top the count up.
    for round_seed in range(1, 6):
        missing = target - run.sent
        if missing <= 0 or run.failures:
            break
        per_case = max(1, math.ceil(missing / (len(operations) * len(modes))))
        for operation in operations:
            for mode in modes:
                _fuzz_operation(operation, mode, per_case, round_seed, fuzz_stage, auth, run)

    assert not run.failures, "\n\n".join(run.failures)
    assert run.sent >= target, f"only {run.sent} requests generated"
    print(f"fuzzed {len(operations)} operations with {run.sent} requests ({run.seconds_in_calls:.1f} s waiting)")
