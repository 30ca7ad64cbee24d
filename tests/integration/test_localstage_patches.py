"""The compatibility layer as a whole (localstage/patches.py, patch_inventory.py): the stage installs every
inventoried patch, stop restores every one, a moved version refuses to start, and the patches no other
test exercises through moto's own code path."""

from __future__ import annotations

import importlib
import io
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.aws import reset_clients
from chalicelib.bootstrap import use_container
from localstage import call_log, moto_patches, patches
from localstage.moto_lambda import detach_sqs_trigger
from localstage.patch_inventory import INVENTORY, PatchTarget
from localstage.patches import Applied, Patches, PatchVersionError
from localstage.server import ACCOUNT_ID, REGION, EmbeddedAws, free_port

pytestmark = pytest.mark.integration


def _resolve(path: str) -> Any:
    """The module or class an inventory entry names (``moto.cloudformation.parsing.ResourceMap``)."""
    module_path, attributes = path, []
    while True:
        try:
            owner = importlib.import_module(module_path)
            break
        except ModuleNotFoundError:
            module_path, _, last = module_path.rpartition(".")
            attributes.insert(0, last)
    for name in attributes:
        owner = getattr(owner, name)
    return owner


def _raw(owner: Any, name: str) -> Any:
    return vars(owner).get(name, getattr(owner, name))


def _current(record: Applied) -> Any:
    if isinstance(record.owner, type | ModuleType):
        return _raw(record.owner, record.target.attribute)  # a staticmethod as stored, not as looked up
    return getattr(record.owner, record.target.attribute)


@pytest.fixture
def stage_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The stage writes its environment into os.environ, builds the app's container and fills moto's
    in-process backends: all put back after, for the tests that run next in this process."""
    saved = dict(os.environ)
    monkeypatch.setenv("LOCAL_STAGE_STATE_DIR", str(tmp_path))
    try:
        yield tmp_path
    finally:
        os.environ.clear()
        os.environ.update(saved)
        use_container(None)
        reset_clients()
        with mock_aws():  # resets every backend as it starts
            pass


def test_given_the_whole_layer_when_the_stage_starts_and_stops_then_every_target_is_wrapped_then_restored(
    stage_environment: Path,
) -> None:
    from localstage.stage import LocalStage, StageOptions

    # GIVEN every static target as it is before the stage (the instance ones are the stage's own objects)
    static = [target for target in INVENTORY if not target.instance]
    before = {target: _raw(_resolve(target.owner), target.attribute) for target in static}
    assert not patches.applied(), "a patch from an earlier test is still in place"
    options = StageOptions(aws_port=free_port(), http_port=free_port(), measure_memory=False)
    with Patches() as launcher:  # python -m localstage.call_log: the one patch made before the stage
        call_log.install(launcher, stage_environment / "calls.log")
        stage = LocalStage(options)
        try:
            # WHEN the stage starts, with IAM enforced and X-Ray on (.chalice/config.json's local stage)
            stage.start()
            live = patches.applied()
            # THEN every inventoried target is patched, and nothing else is
            assert {record.target for record in live} == set(INVENTORY)
            newest: dict[tuple[int, str], Applied] = {}
            for record in live:
                newest[(id(record.owner), record.target.attribute)] = record
            for record in newest.values():
                assert _current(record) is record.replacement, record.target
            for target in static:
                assert _raw(_resolve(target.owner), target.attribute) is not before[target], target
        finally:
            # WHEN it stops
            stage.stop()
        assert [record.target for record in patches.applied()] == [
            PatchTarget(*_call_log_entry()),
        ]
    # THEN nothing is left patched: each static target is the very object it was, each object's attribute too
    assert not patches.applied()
    for target in static:
        assert _raw(_resolve(target.owner), target.attribute) is before[target], target
    for record in live:
        if record.shadowed:
            assert record.target.attribute not in vars(record.owner), record.target
    for record in {(id(r.owner), r.target.attribute): r for r in reversed(live)}.values():  # the oldest of each
        if not record.shadowed:
            assert _current(record) is record.original or _current(record) == record.original, record.target


def _call_log_entry() -> tuple[Any, ...]:
    (entry,) = [target for target in INVENTORY if target.attribute == "DomainDispatcherApplication"]
    return (entry.package, entry.owner, entry.attribute, entry.why, entry.proof, entry.instance)


def test_given_a_moto_the_layer_was_not_written_for_when_the_stage_is_run_then_it_refuses_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from localstage.__main__ import main

    # GIVEN an installed moto that is not the one the layer was written for
    monkeypatch.setattr(patches, "_checked", set())
    monkeypatch.setattr(patches, "_allowed", set())
    monkeypatch.delenv(patches.ALLOW_UNTESTED_ENV, raising=False)
    monkeypatch.setitem(patches.WRITTEN_FOR, "moto", "5.0.0")
    # WHEN python -m localstage starts
    stderr = io.StringIO()
    with redirect_stderr(stderr):
        code = main()
    # THEN it exits 2 before starting anything, saying what differs and what to do
    assert code == 2
    message = stderr.getvalue()
    assert message.startswith("the local stage cannot start:")
    assert "moto: written for 5.0.0, installed 5.2.5" in message
    assert "LOCAL_ALLOW_UNTESTED_VERSIONS=moto" in message
    assert not patches.applied()


def test_given_a_moved_version_when_a_stage_object_starts_then_it_raises_before_patching_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from localstage.stage import LocalStage, StageOptions

    monkeypatch.setattr(patches, "_checked", set())
    monkeypatch.setattr(patches, "_allowed", set())
    monkeypatch.setitem(patches.WRITTEN_FOR, "chalice", "1.0.0")
    with pytest.raises(PatchVersionError, match=r"chalice: written for 1\.0\.0, installed 1\.34\.0"):
        LocalStage(StageOptions(aws_port=free_port(), http_port=free_port())).start()
    assert not patches.applied()


_WRITES: dict[str, Callable[[Any], Any]] = {
    "put_item": lambda db: db.put_item(TableName="t", Item={"pk": {"S": "new"}}),
    "update_item": lambda db: db.update_item(
        TableName="t",
        Key={"pk": {"S": "old"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "1"}},
    ),
    "delete_item": lambda db: db.delete_item(TableName="t", Key={"pk": {"S": "old"}}),
    "batch_write_item": lambda db: db.batch_write_item(
        RequestItems={"t": [{"PutRequest": {"Item": {"pk": {"S": "new"}}}}]}
    ),
}


@contextmanager
def _table() -> Iterator[Any]:
    """GIVEN moto in process with the stage's write lock, and a table holding one item (``old``)."""
    with mock_aws(), Patches() as applied:
        moto_patches.serialise_dynamodb_writes(applied)
        db = boto3.client("dynamodb", region_name=REGION)
        db.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        db.put_item(TableName="t", Item={"pk": {"S": "old"}})
        yield db


def _in_thread(call: Callable[[], Any], name: str = "write") -> tuple[threading.Event, list[BaseException]]:
    done, failed = threading.Event(), []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # the caller asserts on it
            failed.append(exc)
        done.set()

    threading.Thread(target=run, name=name, daemon=True).start()
    return done, failed


@pytest.mark.parametrize("operation", sorted(_WRITES))
def test_given_the_write_lock_held_when_moto_writes_then_the_write_waits_for_it(operation: str) -> None:
    with _table() as db:
        # GIVEN another write in progress (the lock held)
        with moto_patches._lock:
            # WHEN a request reaches moto's DynamoDB backend (a batch: each of its writes)
            done, failed = _in_thread(lambda: _WRITES[operation](db))
            # THEN it waits for the lock: moto's code path goes through it
            assert not done.wait(0.3), f"{operation} did not wait for the write lock"
        assert done.wait(10) and not failed, failed


def test_given_a_transaction_being_cancelled_when_another_thread_writes_then_its_write_survives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.dynamodb.models import DynamoDBBackend

    with _table() as db:
        # GIVEN a transaction that moto has snapshotted and is evaluating (its condition check will fail)
        inside, other_done = threading.Event(), threading.Event()
        read = DynamoDBBackend.get_item

        def get_item(self: Any, *args: Any, **kwargs: Any) -> Any:
            if threading.current_thread().name == "transaction" and not inside.is_set():
                inside.set()
                other_done.wait(0.5)  # the other write, if it is let through, lands now
            return read(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, "get_item", get_item)
        missing = {"TableName": "t", "Key": {"pk": {"S": "missing"}}, "ConditionExpression": "attribute_exists(pk)"}
        items = [{"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}}, {"ConditionCheck": missing}]
        cancelled, _ = _in_thread(lambda: db.transact_write_items(TransactItems=items), name="transaction")
        assert inside.wait(10)
        # WHEN another thread writes meanwhile
        done, failed = _in_thread(lambda: db.put_item(TableName="t", Item={"pk": {"S": "b"}}))
        if done.wait(0.6):
            other_done.set()
        assert cancelled.wait(10) and done.wait(10) and not failed, failed
        # THEN the cancellation's rollback did not undo it: the transaction ran whole under the lock
        assert "Item" in db.get_item(TableName="t", Key={"pk": {"S": "b"}})
        assert "Item" not in db.get_item(TableName="t", Key={"pk": {"S": "a"}})


_READS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "get_item": lambda db: db.get_item(TableName="t", Key={"pk": {"S": "old"}})["Item"],
    "query": lambda db: db.query(
        TableName="t", KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "old"}}
    )["Items"][0],
    "scan": lambda db: db.scan(TableName="t")["Items"][0],
    "batch_get_item": lambda db: db.batch_get_item(RequestItems={"t": {"Keys": [{"pk": {"S": "old"}}]}})["Responses"][
        "t"
    ][0],
    "transact_get_items": lambda db: db.transact_get_items(
        TransactItems=[{"Get": {"TableName": "t", "Key": {"pk": {"S": "old"}}}}]
    )["Responses"][0]["Item"],
}


@pytest.mark.parametrize("operation", sorted(_READS))
def test_given_an_update_in_progress_when_moto_answers_a_read_then_it_waits_for_it(
    operation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.parsing.executors import SetExecutor

    with _table() as db:
        # GIVEN an update of two attributes that moto has applied halfway (its first SET done, in place)
        halfway, read_done = threading.Event(), threading.Event()
        apply = SetExecutor.execute

        def execute(self: Any, item: Any) -> None:
            apply(self, item)
            if threading.current_thread().name == "update" and not halfway.is_set():
                halfway.set()
                read_done.wait(0.5)  # a read let through now would see the first attribute only

        monkeypatch.setattr(SetExecutor, "execute", execute)
        two = {":one": {"N": "1"}}
        update = lambda: db.update_item(  # noqa: E731
            TableName="t",
            Key={"pk": {"S": "old"}},
            UpdateExpression="SET a = :one, b = :one",
            ExpressionAttributeValues=two,
        )
        updated, failed = _in_thread(update, name="update")
        assert halfway.wait(10)
        # WHEN another thread reads the item meanwhile
        seen: list[dict[str, Any]] = []
        read, read_failed = _in_thread(lambda: seen.append(_READS[operation](db)), name="read")
        if read.wait(0.3):
            read_done.set()
        assert updated.wait(10) and read.wait(10) and not failed and not read_failed, failed + read_failed
        # THEN it saw the whole update, as DynamoDB answers: never one attribute of it
        assert seen[0].get("a") == seen[0].get("b") == {"N": "1"}, seen[0]


def test_given_an_update_answering_all_new_when_another_write_follows_then_it_is_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.dynamodb.models import Item

    with _table() as db:
        # GIVEN an update that moto has applied and is about to serialise as its ALL_NEW answer
        serialising, other_done = threading.Event(), threading.Event()
        to_json, calls = Item.to_json, []

        def paused(self: Any) -> Any:
            if threading.current_thread().name == "update":
                calls.append(1)
                if len(calls) == 2:  # the first is the handler's copy of the item before the update
                    serialising.set()
                    other_done.wait(0.5)
            return to_json(self)

        monkeypatch.setattr(Item, "to_json", paused)
        answer: list[dict[str, Any]] = []
        update = lambda: answer.append(  # noqa: E731
            db.update_item(
                TableName="t",
                Key={"pk": {"S": "old"}},
                UpdateExpression="SET a = :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        )
        updated, failed = _in_thread(update, name="update")
        assert serialising.wait(10)
        # WHEN another write to the item arrives meanwhile
        done, other_failed = _in_thread(lambda: _WRITES["update_item"](db))
        if done.wait(0.3):
            other_done.set()
        assert updated.wait(10) and done.wait(10) and not failed and not other_failed, failed + other_failed
        # THEN the answer is the item as this update left it, not with the later write in it
        assert answer[0] == {"pk": {"S": "old"}, "a": {"N": "1"}}


def test_given_the_call_log_when_the_embedded_aws_serves_calls_then_each_is_a_line(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    with Patches() as applied:
        call_log.install(applied, log)
        aws = EmbeddedAws(port=0).start(environ={})
        try:
            session = boto3.session.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name=REGION)
            session.client("sqs", endpoint_url=aws.endpoint).list_queues()
            session.client("dynamodb", endpoint_url=aws.endpoint).list_tables()
        finally:
            aws.stop()
    assert log.read_text().splitlines() == ["sqs ListQueues", "dynamodb ListTables"]


def test_given_a_mapped_queue_detached_when_a_message_is_sent_then_moto_does_not_invoke_and_undo_reattaches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.awslambda.models import LambdaBackend
    from moto.sqs.models import sqs_backends

    invoked: list[str] = []  # what moto's SendMessage would hand to Lambda (in Docker)
    monkeypatch.setattr(LambdaBackend, "send_sqs_batch", lambda self, arn, *_: invoked.append(arn) or True)
    with mock_aws():
        # GIVEN a queue mapped to a function through the Lambda API (moto would invoke it inside SendMessage)
        iam, lam = boto3.client("iam", region_name=REGION), boto3.client("lambda", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "*"}]}
        role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        lam.create_function(
            FunctionName="fn",
            Role=role,
            Runtime="python3.11",
            Handler="h.h",
            Code={"ZipFile": b"PK\x05\x06" + bytes(18)},
        )
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        lam.create_event_source_mapping(FunctionName="fn", EventSourceArn=arn)
        queue = sqs_backends[ACCOUNT_ID][REGION].queues["q"]
        with Patches() as applied:
            # WHEN the stage detaches moto's trigger and a message is sent
            detach_sqs_trigger(applied, arn)
            sqs.send_message(QueueUrl=url, MessageBody="{}")
            # THEN moto did not invoke the function: the message waits for the stage's poller
            assert invoked == []
            received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            assert [message["Body"] for message in received["Messages"]] == ["{}"]
        # AND undone, moto's mapping is back
        assert list(queue.lambda_event_source_mappings) == [f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:fn"]
