"""The in-process transport (localstage/inprocess.py): same answers as over HTTP, no socket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.endpoint import EndpointCreator
from botocore.httpsession import URLLib3Session

from localstage import inprocess
from localstage.server import REGION, EmbeddedAws

pytestmark = pytest.mark.integration


def _client(service: str, endpoint: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    ).client(service, endpoint_url=endpoint)


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    server = EmbeddedAws(port=0, in_process=True).start(environ={})
    try:
        yield server
    finally:
        server.stop()


def _over_http(service: str, endpoint: str) -> Any:
    client = _client(service, endpoint)
    client._endpoint.http_session = URLLib3Session()  # what a client in another process uses
    return client


def test_a_client_created_after_start_goes_in_process_and_others_do_not(aws: EmbeddedAws) -> None:
    assert isinstance(_client("s3", aws.endpoint)._endpoint.http_session, inprocess.InProcessSession)
    assert isinstance(_client("s3", f"http://localhost:{aws.port}")._endpoint.http_session, inprocess.InProcessSession)
    assert isinstance(_client("s3", "http://127.0.0.1:1")._endpoint.http_session, URLLib3Session)


def test_s3_objects_read_the_same_in_process_as_over_http(aws: EmbeddedAws) -> None:
    local, remote = _client("s3", aws.endpoint), _over_http("s3", aws.endpoint)
    local.create_bucket(Bucket="transport")
    key = "uploads/a file+name é.txt"
    local.put_object(Bucket="transport", Key=key, Body=b"x" * 70_000, Metadata={"my_key": "v1", "other-key": "v2"})

    for client in (local, remote):
        got = client.get_object(Bucket="transport", Key=key)
        assert got["Body"].read() == b"x" * 70_000  # a streamed body
        assert got["Metadata"] == {"my_key": "v1", "other-key": "v2"}  # moto keeps underscored names
        head = client.head_object(Bucket="transport", Key=key)
        assert head["ContentLength"] == 70_000
        listed = client.list_objects_v2(Bucket="transport", Prefix="uploads/")
        assert [o["Key"] for o in listed["Contents"]] == [key]


def test_errors_arrive_with_the_same_code_and_status(aws: EmbeddedAws) -> None:
    answers = []
    for client in (_client("dynamodb", aws.endpoint), _over_http("dynamodb", aws.endpoint)):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            client.get_item(TableName="missing", Key={"pk": {"S": "x"}})
        answers.append(
            (raised.value.response["Error"]["Code"], raised.value.response["ResponseMetadata"]["HTTPStatusCode"])
        )
    assert answers[0] == answers[1] == ("ResourceNotFoundException", 400)


def test_a_middleware_put_in_front_later_sees_in_process_calls(aws: EmbeddedAws) -> None:
    seen: list[str] = []

    def spying(inner: Any) -> Any:
        def spy(environ: dict[str, Any], respond: Any) -> Any:
            seen.append(environ["REQUEST_METHOD"] + " " + environ["PATH_INFO"])
            return inner(environ, respond)

        return spy

    aws.serve_through(spying)  # on moto's werkzeug server, through the compatibility layer (undone by stop)
    _client("sqs", aws.endpoint).list_queues()
    assert seen == ["POST /"]


def test_stages_route_their_own_port_and_the_last_one_out_restores_botocore() -> None:
    first = EmbeddedAws(port=0, in_process=True).start(environ={})
    second = EmbeddedAws(port=0, in_process=True).start(environ={})
    first.stop()
    assert isinstance(_client("s3", first.endpoint)._endpoint.http_session, URLLib3Session)
    assert isinstance(_client("s3", second.endpoint)._endpoint.http_session, inprocess.InProcessSession)
    second.stop()
    assert isinstance(_client("s3", second.endpoint)._endpoint.http_session, URLLib3Session)
    if not inprocess.routed_endpoints():  # no other stage in this process: botocore's own method is back
        assert EndpointCreator.create_endpoint.__module__ == "botocore.endpoint"


def test_http_only_when_asked() -> None:
    server = EmbeddedAws(port=0, in_process=False).start(environ={})
    try:
        assert isinstance(_client("s3", server.endpoint)._endpoint.http_session, URLLib3Session)
    finally:
        server.stop()


def test_the_request_is_served_without_the_callers_thread_state(aws: EmbeddedAws) -> None:
    # Served on the caller's thread, moto's work for a request (a Lambda invoke's telemetry) would be
    # signed as the caller's role and captured into the caller's log.
    from botocore.credentials import Credentials

    from localstage.iam.principals import Acting, acting_as, current

    served_as: list[object] = []
    wsgi_server = aws._server._server  # type: ignore[attr-defined]
    inner = wsgi_server.app

    def spy(environ: dict[str, Any], respond: Any) -> Any:
        served_as.append(current())
        return inner(environ, respond)

    caller = Acting("arn:aws:iam::123456789012:role/r", "s", Credentials("AKIACALLER", "secret"))
    wsgi_server.app = spy
    try:
        with acting_as(caller):
            _client("sqs", aws.endpoint).list_queues()
    finally:
        wsgi_server.app = inner
    assert served_as == [None]


def test_a_read_response_s_headers_are_urllib3_s_view_of_them() -> None:
    from urllib3 import HTTPHeaderDict

    # GIVEN headers with a repeated name, spelled two ways, and an underscored one
    headers = [("x-amz-meta-a", "1"), ("Content-Type", "application/json"), ("X-Amz-Meta-A", "2"), ("my_key", "v")]
    # WHEN the in-process session merges them for a response read whole
    merged = inprocess.merged_headers(headers)
    # THEN they read as urllib3's HTTPHeaderDict presents them to botocore
    assert merged == dict(HTTPHeaderDict(headers)) == {
        "x-amz-meta-a": "1, 2", "Content-Type": "application/json", "my_key": "v"
    }  # fmt: skip


def test_sqs_answers_read_the_same_in_process_as_over_http(aws: EmbeddedAws) -> None:
    local, remote = _client("sqs", aws.endpoint), _over_http("sqs", aws.endpoint)
    url = local.create_queue(QueueName="transport")["QueueUrl"]
    local.send_message(
        QueueUrl=url, MessageBody="hello", MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}}
    )
    answers = []
    for client in (local, remote):
        got = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        headers = got["ResponseMetadata"]["HTTPHeaders"]
        answers.append((got["Attributes"]["ApproximateNumberOfMessages"], sorted(headers.keys() - SERVER_HEADERS)))
    assert answers[0] == answers[1] and answers[0][0] == "1"
    assert "content-type" in answers[0][1]


SERVER_HEADERS = {"connection", "date"}  # werkzeug's server adds these to every answer over HTTP


def test_a_call_is_served_on_its_callers_thread_without_its_state_which_is_back_afterwards(aws: EmbeddedAws) -> None:
    import contextvars
    import threading

    from botocore.credentials import Credentials

    from localstage import output
    from localstage.iam.principals import Acting, acting_as, current
    from localstage.xray import current_header, invocation_header

    marker: contextvars.ContextVar[str | None] = contextvars.ContextVar("marker", default=None)
    seen: list[tuple[Any, ...]] = []
    wsgi_server = aws._server._server  # type: ignore[attr-defined]
    inner = wsgi_server.app

    def spy(environ: dict[str, Any], respond: Any) -> Any:
        seen.append((threading.get_ident(), marker.get(), current(), current_header()))
        print("printed while serving")  # not the caller's output
        marker.set("left behind by the request")
        return inner(environ, respond)

    caller = Acting("arn:aws:iam::123456789012:role/r", "s", Credentials("AKIACALLER", "secret"))
    client = _client("sqs", aws.endpoint)
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    wsgi_server.app = spy
    try:
        marker.set("the caller's")
        with acting_as(caller), invocation_header(header), output.captured() as printed:
            for _ in range(3):
                client.list_queues()
            after = (marker.get(), current(), current_header())
    finally:
        wsgi_server.app = inner
    # served on this very thread, each time as on a new one: no context variable, principal or trace
    assert seen == [(threading.get_ident(), None, None, None)] * 3
    # and the caller's state is as it was
    assert after == ("the caller's", caller, header)
    assert "printed while serving" not in "".join(printed)


def test_the_cpu_a_served_call_takes_is_counted_apart_once_for_nested_calls() -> None:
    import time

    from localstage.threads import counting_served_cpu, run_detached, served_cpu_s

    def busy(seconds: float) -> None:
        until = time.thread_time() + seconds
        while time.thread_time() < until:
            pass

    before = served_cpu_s()
    run_detached(lambda: busy(0.05))
    assert served_cpu_s() == before  # not counted outside a handler: nobody reads it
    with counting_served_cpu():
        run_detached(lambda: (busy(0.05), run_detached(lambda: busy(0.05))))
    assert 0.1 <= served_cpu_s() - before < 0.15  # the outer call's 0.1 s, the inner one inside it
