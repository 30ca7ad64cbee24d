"""The X-Ray hooks on moto (in-process): trace headers kept by SQS, and traces found by annotation."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localstage import xray_moto
from localstage.patches import Patches
from localstage.xray import HEADER, ServiceTracing, XRayDaemon, child_header, new_segment_id, new_trace_id

pytestmark = pytest.mark.integration

REGION = "us-east-1"


@pytest.fixture
def aws() -> Iterator[None]:
    """GIVEN moto with the local stage's X-Ray hooks, keeping at most 3 traces."""
    with mock_aws():
        tracing = ServiceTracing(XRayDaemon(boto3.client("xray", region_name=REGION)), REGION, "123456789012")
        with Patches() as patches:
            xray_moto.install(patches, tracing, max_traces=3)
            yield


def _segment(trace_id: str, annotations: dict[str, Any] | None = None, started: float | None = None) -> str:
    started = started or time.time()
    document = {"id": new_segment_id(), "name": "fn", "trace_id": trace_id, "start_time": started}
    document["end_time"] = started + 0.1
    if annotations:
        document["subsegments"] = [
            {
                "id": new_segment_id(),
                "name": "biz",
                "start_time": started,
                "end_time": started + 0.05,
                "annotations": annotations,
            }
        ]
    return json.dumps(document)


def test_given_traces_annotated_with_orders_when_filtered_by_one_then_only_its_trace_with_annotations(
    aws: None,
) -> None:
    xray = boto3.client("xray", region_name=REGION)
    wanted, other = new_trace_id(), new_trace_id()
    xray.put_trace_segments(
        TraceSegmentDocuments=[
            _segment(wanted, {"order_id": "ord_1", "order_total": 25.5}),
            _segment(other, {"order_id": "ord_2"}),
        ]
    )
    window = {"StartTime": time.time() - 60, "EndTime": time.time() + 60}

    found = xray.get_trace_summaries(**window, FilterExpression='annotation.order_id = "ord_1"')["TraceSummaries"]

    assert [summary["Id"] for summary in found] == [wanted]
    annotations = found[0]["Annotations"]
    assert annotations["order_id"][0]["AnnotationValue"] == {"StringValue": "ord_1"}
    assert annotations["order_total"][0]["AnnotationValue"] == {"NumberValue": 25.5}
    assert len(xray.get_trace_summaries(**window)["TraceSummaries"]) == 2


def test_given_an_expression_the_stage_cannot_evaluate_when_asked_then_a_400_not_moto_500(aws: None) -> None:
    xray = boto3.client("xray", region_name=REGION)
    with pytest.raises(ClientError) as raised:
        xray.get_trace_summaries(StartTime=time.time() - 60, EndTime=time.time(), FilterExpression="responsetime > 5")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "annotation.KEY" in raised.value.response["Error"]["Message"]


def test_given_more_traces_than_the_bound_when_stored_then_the_oldest_are_forgotten(aws: None) -> None:
    xray = boto3.client("xray", region_name=REGION)
    ids = [new_trace_id() for _ in range(5)]
    for trace_id in ids:
        xray.put_trace_segments(TraceSegmentDocuments=[_segment(trace_id)])

    answer = xray.batch_get_traces(TraceIds=ids)

    assert sorted(trace["Id"] for trace in answer["Traces"]) == sorted(ids[2:])
    assert answer["UnprocessedTraceIds"] == ids[:2]


def test_given_the_daemon_s_direct_sink_when_it_forwards_then_it_answers_and_stores_as_put_trace_segments(
    aws: None,
) -> None:
    xray = boto3.client("xray", region_name=REGION)
    sink = xray_moto.BackendXRay("123456789012", REGION)
    kept, bad = new_trace_id(), "not json"
    # WHEN the same documents, one good and one not JSON, go through the API and through the sink
    by_api = xray.put_trace_segments(TraceSegmentDocuments=[_segment(new_trace_id()), bad])
    by_sink = sink.put_trace_segments(TraceSegmentDocuments=[_segment(kept), bad])
    # THEN the sink answers as the API does, and its trace is stored and found, within the bound (3)
    assert by_sink["UnprocessedTraceSegments"] == by_api["UnprocessedTraceSegments"]
    assert by_sink["UnprocessedTraceSegments"] == [{"ErrorCode": "JSONFormatError", "Message": "Bad JSON data"}]
    assert [trace["Id"] for trace in xray.batch_get_traces(TraceIds=[kept])["Traces"]] == [kept]
    for _ in range(3):
        sink.put_trace_segments(TraceSegmentDocuments=[_segment(new_trace_id())])
    assert xray.batch_get_traces(TraceIds=[kept])["UnprocessedTraceIds"] == [kept]


def _send(service: str, queue_url: str, queue_arn: str) -> tuple[Any, str, Callable[[], Any]]:
    """A client, the operation that carries the header, and a call of it that ends in the queue."""
    if service == "sqs":
        sqs = boto3.client("sqs", region_name=REGION)
        return sqs, "SendMessage", lambda: sqs.send_message(QueueUrl=queue_url, MessageBody="{}")
    if service == "sqs-batch":
        sqs = boto3.client("sqs", region_name=REGION)
        entries = [{"Id": "1", "MessageBody": "{}"}]
        return sqs, "SendMessageBatch", lambda: sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    if service in ("sns", "sns-batch"):
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name="notifications")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        if service == "sns":
            return sns, "Publish", lambda: sns.publish(TopicArn=topic, Message="{}")
        entries = [{"Id": "1", "Message": "{}"}]
        return sns, "PublishBatch", lambda: sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=entries)
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name="orders", EventPattern=json.dumps({"source": ["shop"]}))
    events.put_targets(Rule="orders", Targets=[{"Id": "q", "Arn": queue_arn}])
    entry = {"Source": "shop", "DetailType": "x", "Detail": "{}"}
    return events, "PutEvents", lambda: events.put_events(Entries=[entry])


@pytest.mark.parametrize("service", ["sqs", "sqs-batch", "sns", "sns-batch", "events"])
def test_given_a_traced_request_when_moto_delivers_to_a_queue_then_the_message_keeps_the_header(
    aws: None, service: str
) -> None:
    # GIVEN a queue fed by SendMessage(Batch), an SNS subscription or an EventBridge rule
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client, operation, send = _send(service, url, arn)
    header = child_header(new_trace_id(), new_segment_id())

    def add_header(request: Any, **_: Any) -> None:  # what the X-Ray SDK's botocore patch does
        request.headers[HEADER] = header

    # WHEN one request carries a trace header and the next does not
    event = f"before-send.{client.meta.service_model.service_name}.{operation}"
    client.meta.events.register(event, add_header)
    send()
    client.meta.events.unregister(event, add_header)
    send()

    # THEN the message moto delivered while serving the first keeps it as AWSTraceHeader, as AWS does
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["AWSTraceHeader"])
    headers = [message.get("Attributes", {}).get("AWSTraceHeader") for message in messages["Messages"]]
    assert headers == [header, None]
