"""Asynchronous invocation (``InvocationType=Event``), as Lambda's internal event queue runs it.

SNS, EventBridge, S3 and ``lambda:Invoke`` with ``InvocationType=Event`` hand an
event to Lambda and get 202 at once. Lambda then
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html):

- runs the function; on a function error (exception, timeout, out of memory)
  retries it ``MaximumRetryAttempts`` times (default 2), about one minute and
  then two minutes later, with the same request id;
- on throttling it keeps the event and retries with back-off until the event
  is older than ``MaximumEventAgeInSeconds`` (default 6 h); throttles do not
  use up retry attempts;
- once retries are exhausted (condition ``RetriesExhausted``) or the event is
  too old (``EventAgeExceeded``), sends an invocation record to the
  ``OnFailure`` destination if one is configured, else drops the event; a
  success goes to the ``OnSuccess`` destination.

Local differences: the retry delays come from the ``delays`` argument (or
``LOCAL_LAMBDA_ASYNC_RETRY_DELAYS_SECONDS``, e.g. ``1,2``) instead of AWS's
1 and 2 minutes; throttled events wait the last delay between attempts;
``DeadLetterConfig`` is not modelled (moto 5.2.5 does not store it), only
destinations set with ``PutFunctionEventInvokeConfig``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from localstage.functions import FunctionSpec
from localstage.lambda_model import InvocationResult, LambdaThrottledError
from localstage.lambdas import LambdaEmulator
from localstage.threads import KeptThreads

log = logging.getLogger("localstage.async")
_DELIVERIES = KeptThreads("async")  # each delivery waits out its retries on a kept thread

RETRY_DELAYS_ENV = "LOCAL_LAMBDA_ASYNC_RETRY_DELAYS_SECONDS"
AWS_RETRY_DELAYS_S = (60.0, 120.0)


class Destinations(Protocol):
    """Sends an invocation record to a destination ARN (SQS queue, SNS topic, function or bus)."""

    def send(self, arn: str, record: dict[str, Any], success: bool) -> None: ...


class LoggedDestinations:
    """Used when no AWS is wired in: says where the record would have gone."""

    def send(self, arn: str, record: dict[str, Any], success: bool) -> None:
        log.warning("no destination sender: the record for %s was not sent", arn)


def retry_delays_from_env(env: dict[str, str] | None = None) -> tuple[float, ...]:
    """``LOCAL_LAMBDA_ASYNC_RETRY_DELAYS_SECONDS`` (comma-separated seconds) or AWS's 60 and 120 s."""
    raw = (os.environ if env is None else env).get(RETRY_DELAYS_ENV, "")
    delays = tuple(float(part) for part in raw.split(",") if part.strip())
    return delays or AWS_RETRY_DELAYS_S


def invocation_record(
    request_id: str, function_arn: str, condition: str, attempts: int, payload: Any, result: InvocationResult | None
) -> dict[str, Any]:
    """The record Lambda sends to a destination (``version 1.0``)."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": payload,
    }
    if result is not None:
        context: dict[str, Any] = {"statusCode": 200, "executedVersion": result.executed_version}
        if result.function_error:
            context["functionError"] = result.function_error
        record["responseContext"] = context
        record["responsePayload"] = result.json()
    return record


class AsyncInvocations:
    """Lambda's event queue for one emulator: accept now, run, retry, then send to a destination."""

    def __init__(
        self,
        emulator: LambdaEmulator,
        destinations: Destinations | None = None,
        delays: tuple[float, ...] | None = None,
    ) -> None:
        self._emulator = emulator
        self._destinations = destinations or LoggedDestinations()
        self.delays = delays if delays is not None else retry_delays_from_env()
        self._stop = threading.Event()

    def submit(
        self, name: str, payload: Any = None, qualifier: str | None = None, trace_header: str | None = None
    ) -> str:
        """Accept the event (raises ``FunctionNotFoundError`` at once, like the 404) and return its request id.

        ``trace_header``: the X-Ray trace of the caller (the invoke, publish or put-events request),
        which every attempt continues.
        """
        self._emulator.spec(name)
        request_id = str(uuid.uuid4())
        event = LambdaEmulator.decode_payload(payload)
        _DELIVERIES.submit(lambda: self._deliver(name, event, qualifier, request_id, trace_header), f"async-{name}")
        return request_id

    def stop(self) -> None:
        """Abandon pending retries (the stage is stopping)."""
        self._stop.set()

    def _delay(self, attempt: int) -> float:
        return self.delays[min(attempt, len(self.delays)) - 1]

    def _deliver(
        self, name: str, event: Any, qualifier: str | None, request_id: str, trace_header: str | None = None
    ) -> None:
        received = time.monotonic()
        attempts = 0
        result: InvocationResult | None = None
        condition = "RetriesExhausted"
        while not self._stop.is_set():
            config = self._emulator.config(name, qualifier).asynchronous
            if time.monotonic() - received > config.max_event_age_s:
                condition = "EventAgeExceeded"
                break
            try:
                # Encoded again: invoke decodes its payload, and an event that is a JSON string ("abc")
                # would otherwise be decoded a second time (and fail, or change).
                encoded = json.dumps(event).encode()
                result = self._emulator.invoke(name, encoded, qualifier, request_id, trace_header)
            except LambdaThrottledError:
                log.warning("async event %s for %s throttled; it stays queued", request_id, name)
                self._stop.wait(self.delays[-1])
                continue
            attempts += 1
            if not result.function_error:
                self._send(name, qualifier, config.on_success, "Success", attempts, event, result, request_id)
                return
            if attempts > config.max_retries:
                break
            delay = self._delay(attempts)
            log.warning(
                "async event %s for %s failed (attempt %d); retrying in %.1f s", request_id, name, attempts, delay
            )
            self._stop.wait(delay)
        if self._stop.is_set():
            return
        config = self._emulator.config(name, qualifier).asynchronous
        reason = f"{condition} after {attempts} attempt(s)"
        if config.on_failure is None:
            log.warning("async event %s for %s dropped: %s, no on-failure destination", request_id, name, reason)
            return
        log.warning("async event %s for %s sent to %s: %s", request_id, name, config.on_failure, reason)
        self._send(name, qualifier, config.on_failure, condition, attempts, event, result, request_id)

    def _send(
        self,
        name: str,
        qualifier: str | None,
        arn: str | None,
        condition: str,
        attempts: int,
        event: Any,
        result: InvocationResult | None,
        request_id: str,
    ) -> None:
        if arn is None:
            return
        function_arn = self._emulator.config(name, qualifier).arn
        if qualifier is None:
            function_arn += ":$LATEST"
        record = invocation_record(request_id, function_arn, condition, attempts, event, result)
        try:
            self._destinations.send(arn, record, success=condition == "Success")
        except Exception:  # a broken destination must not kill the queue; say why the record is lost
            log.exception("could not send the record of %s to %s", request_id, arn)


def configure_async_invokes(stage: str, functions: Iterable[FunctionSpec]) -> None:
    """Retries and on-failure destinations as the deployment sets them (infra/pipeline.py), on the Lambda API."""
    import boto3

    from infra.pipeline import async_invoke_config
    from infra.template import stage_template

    resources = stage_template(stage)["Resources"]
    lam, sqs = boto3.client("lambda"), boto3.client("sqs")
    for spec in functions:
        config = async_invoke_config(spec.resource_name)
        if config is None:
            continue
        queue = resources[config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]]
        url = sqs.get_queue_url(QueueName=queue["Properties"]["QueueName"])["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        lam.put_function_event_invoke_config(
            FunctionName=spec.name,
            MaximumRetryAttempts=config["MaximumRetryAttempts"],
            DestinationConfig={"OnFailure": {"Destination": arn}},
        )
