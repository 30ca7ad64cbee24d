"""moto's answers with the stage's speedups (localstage/moto_speedups.py) are moto's answers without them,
byte for byte, and cost what the data's size says, not its square."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localstage.moto_speedups import speed_up_moto
from localstage.patches import Patches

pytestmark = pytest.mark.unit

REGION = "us-east-1"
TABLE = "speedups"
NESTED = {
    "M": {
        "inner": {"L": [{"S": "a"}, {"N": "1.50"}, {"B": b"\x00\xff"}, {"NULL": True}, {"M": {}}, {"L": []}]},
        "flag": {"BOOL": False},
        "empty": {"S": ""},
        "sets": {"M": {"ss": {"SS": ["x", "y"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": [b"\x01", b"\x02"]}}},
    }
}
ITEM = {
    "pk": {"S": "item#1"},
    "sk": {"N": "7"},
    "name": {"S": 'Mug ☕ "quoted" \\ slash'},
    "price": {"N": "12.50"},
    "blob": {"B": b"binary\x00data"},
    "tags": {"SS": ["kitchen", "sale"]},
    "sizes": {"NS": ["1", "2", "3.25"]},
    "chunks": {"BS": [b"one", b"two"]},
    "active": {"BOOL": True},
    "nothing": {"NULL": True},
    "detail": NESTED,
    "lines": {"L": [NESTED, {"L": [{"S": "deep"}]}]},
}


def create_table(dynamodb: Any) -> None:
    """The tests' table: a string hash key and a number range key."""
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_table(dynamodb)
        yield dynamodb, boto3.client("sqs", region_name=REGION)


def _raw_bodies(client: Any) -> list[bytes]:
    """Every response body ``client`` receives, as moto wrote it."""
    bodies: list[bytes] = []

    def keep(response_dict: dict[str, Any], **_: Any) -> None:
        bodies.append(response_dict["body"])

    client.meta.events.register("before-parse.dynamodb.*", keep)
    return bodies


def _item_operations(dynamodb: Any) -> None:
    """Every item operation whose answer carries attribute values, on the same data."""
    key = {"pk": ITEM["pk"], "sk": ITEM["sk"]}
    dynamodb.put_item(TableName=TABLE, Item=ITEM)
    dynamodb.put_item(TableName=TABLE, Item={**ITEM, "sk": {"N": "8"}})
    dynamodb.get_item(TableName=TABLE, Key=key)
    dynamodb.get_item(
        TableName=TABLE,
        Key=key,
        ProjectionExpression="detail.inner, lines[1], #b",
        ExpressionAttributeNames={"#b": "blob"},
    )
    dynamodb.query(TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": ITEM["pk"]})
    dynamodb.scan(TableName=TABLE, Limit=1)
    dynamodb.batch_get_item(RequestItems={TABLE: {"Keys": [key, {**key, "sk": {"N": "9"}}]}})
    dynamodb.transact_get_items(TransactItems=[{"Get": {"TableName": TABLE, "Key": key}}])
    dynamodb.update_item(
        TableName=TABLE,
        Key=key,
        UpdateExpression="SET price = :p, detail.flag = :t REMOVE tags",
        ExpressionAttributeValues={":p": {"N": "13"}, ":t": {"BOOL": True}},
        ReturnValues="ALL_NEW",
    )
    dynamodb.update_item(
        TableName=TABLE, Key=key, UpdateExpression="SET #n = :n", ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":n": {"S": "Cup"}}, ReturnValues="UPDATED_OLD",
    )  # fmt: skip
    dynamodb.put_item(TableName=TABLE, Item=ITEM, ReturnValues="ALL_OLD")
    dynamodb.delete_item(TableName=TABLE, Key=key, ReturnValues="ALL_OLD")
    dynamodb.get_item(TableName=TABLE, Key=key)  # no item: no "Item" member at all


def test_given_every_attribute_type_when_moto_answers_item_operations_then_the_bodies_are_moto_s_own(
    aws: tuple[Any, Any],
) -> None:
    dynamodb, _ = aws
    # GIVEN moto's own answers to every item operation
    bodies = _raw_bodies(dynamodb)
    _item_operations(dynamodb)
    plain = list(bodies)
    dynamodb.delete_item(TableName=TABLE, Key={"pk": ITEM["pk"], "sk": {"N": "8"}})  # the data as it started
    bodies.clear()
    # WHEN the same operations run on the same data with the speedup
    with Patches() as patches:
        speed_up_moto(patches)
        _item_operations(dynamodb)
    # THEN every body is the same bytes (binary values base64-encoded once, sets, nesting, order)
    assert len(plain) == len(bodies) == 13
    assert bodies == plain
    assert base64.b64encode(b"binary\x00data") in plain[2]


def _counting(calls: Counter[str], original: Callable[..., Any]) -> Callable[..., Any]:
    def picker(self: Any, context: Any) -> Any:
        calls["lookups"] += 1
        return original(self, context)

    return picker


def _lookups_for_an_item_of(dynamodb: Any, attributes: int, monkeypatch: pytest.MonkeyPatch) -> int:
    from moto.core.serialize import AttributePicker

    item: dict[str, Any] = {"pk": {"S": f"wide#{attributes}"}, "sk": {"N": "1"}}
    item.update({f"a{i}": {"M": {"n": {"N": str(i)}, "s": {"SS": ["x"]}}} for i in range(attributes)})
    dynamodb.put_item(TableName=TABLE, Item=item)
    calls: Counter[str] = Counter()
    with monkeypatch.context() as patched:
        patched.setattr(AttributePicker, "__call__", _counting(calls, AttributePicker.__call__))
        found = dynamodb.get_item(TableName=TABLE, Key={"pk": item["pk"], "sk": item["sk"]})["Item"]
    assert found["a3"] == {"M": {"n": {"N": "3"}, "s": {"SS": ["x"]}}}
    return calls["lookups"]


def test_given_the_speedup_when_an_item_grows_then_the_serializer_s_lookups_do_not(
    aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    dynamodb, _ = aws
    with Patches() as patches:
        speed_up_moto(patches)
        # WHEN moto answers a GetItem of an item with 5 attributes, then of one with 50
        small, large = (_lookups_for_an_item_of(dynamodb, n, monkeypatch) for n in (5, 50))
    # THEN its serializer looks up the answer's own members only (Item, ConsumedCapacity), not each value's
    # ten union members: without the speedup, 5 and 50 attributes cost hundreds and thousands of lookups
    assert small == large
    assert large < 10


def test_given_messages_inside_and_past_retention_when_checked_then_the_speedup_answers_as_moto(
    aws: tuple[Any, Any],
) -> None:
    from moto.sqs.models import sqs_backends

    _, sqs = aws
    url = sqs.create_queue(QueueName="kept", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    for body in ("fresh", "at-59s", "at-61s"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    backend = sqs_backends["123456789012"][REGION]
    messages: list[Any] = list(backend.queues["kept"]._messages)
    messages[1].sent_timestamp -= 59_000
    messages[2].sent_timestamp -= 61_000  # sent 61 s earlier: past the queue's 60 s
    moto_s = [backend.is_message_valid_based_on_retention_period("kept", m) for m in messages]
    # WHEN the stage's check answers for the same messages
    with Patches() as patches:
        speed_up_moto(patches)
        ours = [backend.is_message_valid_based_on_retention_period("kept", m) for m in messages]
    # THEN it is moto's answer: inside, inside, past
    assert ours == moto_s == [True, True, False]


def test_given_the_speedup_when_a_long_queue_is_received_from_then_no_queue_attributes_are_computed(
    aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.sqs.models import Queue

    _, sqs = aws
    url = sqs.create_queue(QueueName="long")["QueueUrl"]
    for start in range(0, 200, 10):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, start + 10)]
        )
    computed: Counter[str] = Counter()
    original = Queue.attributes

    def counted(queue: Any) -> dict[str, Any]:
        computed["attributes"] += 1
        return dict(original.fget(queue))  # type: ignore[attr-defined]

    monkeypatch.setattr(Queue, "attributes", property(counted))
    with Patches() as patches:
        speed_up_moto(patches)
        # WHEN a consumer receives 10 of 200 messages
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
    # THEN the retention check read the one attribute: moto computes all of them three times a message
    assert len(got) == 10
    assert computed["attributes"] == 0


EXPRESSIONS = (
    "SET #s = :s, updated_at = :u, #v = #v + :one REMOVE deadline_at",
    "SET notifications = list_append(if_not_exists(notifications, :empty), :n), lines[0].qty = :q",
    "ADD tags :t, #c :one DELETE sizes :s",
)


def _structure(value: Any, seen: dict[int, int]) -> str:
    """A tree as text, shared objects and cycles (the parent links) written as back-references."""
    if isinstance(value, (str, int, float, bool, type(None))):
        return repr(value)
    if id(value) in seen:
        return f"@{seen[id(value)]}"
    seen[id(value)] = len(seen)
    if isinstance(value, list):
        return "[" + ",".join(_structure(item, seen) for item in value) + "]"
    fields = ",".join(f"{k}={_structure(v, seen)}" for k, v in sorted(vars(value).items()))
    return f"{type(value).__name__}({fields})"


def _objects(value: Any) -> set[int]:
    found: set[int] = set()
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, (str, int, float, bool, type(None))) or id(item) in found:
            continue
        found.add(id(item))
        pending.extend(item if isinstance(item, list) else vars(item).values())
    return found


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_given_an_update_expression_tree_when_copied_then_it_is_deepcopy_s_copy_sharing_nothing(
    expression: str,
) -> None:
    import copy

    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    from localstage.moto_speedups import tree_copy

    tree = UpdateExpressionParser.make(expression)
    before = _structure(tree, {})
    # WHEN the stage's copy and deepcopy's are made of the same tree
    ours, theirs = tree_copy(tree), copy.deepcopy(tree)
    # THEN they are the same structure, parent links into the copy included, and share no object with it
    assert _structure(ours, {}) == _structure(theirs, {}) == before
    assert not _objects(ours) & _objects(tree)
    assert ours.children[0].parent is ours


def test_given_the_speedup_when_an_update_is_validated_then_its_tree_is_copied_without_pickling(
    aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import copy

    dynamodb, _ = aws
    key = {"pk": {"S": "counter"}, "sk": {"N": "1"}}
    dynamodb.put_item(TableName=TABLE, Item={**key, "n": {"N": "1"}, "tags": {"SS": ["a"]}})
    rebuilt: Counter[str] = Counter()
    original = copy._reconstruct  # type: ignore[attr-defined]

    def counted(x: Any, memo: Any, *rest: Any, **options: Any) -> Any:
        rebuilt[type(x).__name__] += 1
        return original(x, memo, *rest, **options)

    monkeypatch.setattr(copy, "_reconstruct", counted)
    with Patches() as patches:
        speed_up_moto(patches)
        # WHEN moto applies an update expression
        answer = dynamodb.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET n = n + :one, #l = list_append(if_not_exists(#l, :empty), :x) ADD tags :t",
            ExpressionAttributeNames={"#l": "log"},
            ExpressionAttributeValues={
                ":one": {"N": "1"}, ":empty": {"L": []}, ":x": {"L": [{"S": "x"}]}, ":t": {"SS": ["b"]}
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]  # fmt: skip
    # THEN the update is moto's, and no node of its expression went through the pickle protocol
    assert answer["n"] == {"N": "2"} and answer["log"] == {"L": [{"S": "x"}]}
    assert sorted(answer["tags"]["SS"]) == ["a", "b"]
    assert not [name for name in rebuilt if name != "datetime"], rebuilt
