"""DynamoDB writes with the stage's speedups (localstage/moto_speedups.py): a cancelled transaction is undone
as moto undoes it, from the keys it names, and an update expression is parsed once per text."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from localstage.moto_speedups import speed_up_moto
from localstage.patches import Patches
from tests.unit.test_localstage_moto_speedups import EXPRESSIONS, REGION, TABLE, _structure, aws, create_table

pytestmark = pytest.mark.unit
__all__ = ["aws"]  # the fixture, shared with the serialisation tests


def _row(n: int, **more: Any) -> dict[str, Any]:
    return {"pk": {"S": f"row#{n % 7}"}, "sk": {"N": str(n)}, "v": {"N": str(n)}, **more}


def _key(n: int) -> dict[str, Any]:
    return {"pk": {"S": f"row#{n % 7}"}, "sk": {"N": str(n)}}


def _transactions(dynamodb: Any) -> list[Any]:
    """A committed transaction, two cancelled ones (a failed condition, a key named twice), and the tables' state."""
    from botocore.exceptions import ClientError

    for n in range(20):
        dynamodb.put_item(TableName=TABLE, Item=_row(n))
    outcomes: list[Any] = []
    writes = [
        {"Put": {"TableName": TABLE, "Item": _row(100)}},  # a new item in an existing bucket
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "fresh"}, "sk": {"N": "1"}}}},  # a new bucket
        {"Update": {"TableName": TABLE, "Key": _key(3), "UpdateExpression": "SET v = v + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Delete": {"TableName": TABLE, "Key": _key(4)}},
    ]  # fmt: skip
    failing = {
        "ConditionCheck": {"TableName": TABLE, "Key": _key(5), "ConditionExpression": "attribute_not_exists(pk)"}
    }
    twice = {"Delete": {"TableName": TABLE, "Key": _key(3)}}
    for items in ([*writes, failing], [*writes, twice], writes):
        try:
            dynamodb.transact_write_items(TransactItems=items)
            outcomes.append("committed")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
        outcomes.append(sorted(map(repr, dynamodb.scan(TableName=TABLE)["Items"])))
    return outcomes


def test_given_cancelled_and_committed_transactions_when_the_speedup_undoes_them_then_the_tables_are_moto_s(
    aws: tuple[Any, Any],
) -> None:
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.table import Table

    dynamodb, _ = aws
    moto_s = _transactions(dynamodb)
    dynamodb.delete_table(TableName=TABLE)
    create_table(dynamodb)
    # WHEN the same transactions run on the same data with the speedup
    with Patches() as patches:
        speed_up_moto(patches)
        ours = _transactions(dynamodb)
    # THEN each ends as moto's: cancelled ones leave every item as it was, the committed one writes all four
    assert ours == moto_s
    assert moto_s[0] == "TransactionCanceledException" and moto_s[2] == "ValidationException"
    assert moto_s[1] == moto_s[3] != moto_s[5] and moto_s[4] == "committed"
    assert type(dynamodb_backends["123456789012"][REGION].tables[TABLE]) is Table


def test_given_the_speedup_when_a_transaction_runs_on_a_large_table_then_only_its_keys_are_copied(
    aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models.dynamo_type import Item

    dynamodb, _ = aws
    for start in range(0, 300, 25):
        dynamodb.batch_write_item(
            RequestItems={
                TABLE: [
                    {"PutRequest": {"Item": {**_row(n), "pk": {"S": f"big#{n}"}}}} for n in range(start, start + 25)
                ]
            }
        )
    copied: Counter[str] = Counter()
    original = Item.__deepcopy__
    monkeypatch.setattr(Item, "__deepcopy__", lambda item, memo: copied.update(["item"]) or original(item, memo))
    with Patches() as patches:
        speed_up_moto(patches)
        # WHEN a transaction naming two keys runs on a table of 300 items
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {**_row(1), "pk": {"S": "big#1"}, "v": {"N": "-1"}}}},
                {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": {"S": "big#2"}, "sk": {"N": "2"}},
                                    "ConditionExpression": "attribute_exists(pk)"}},
            ]
        )  # fmt: skip
    # THEN only the items of the buckets it names were copied (moto copies all 300, once per operation)
    assert copied["item"] <= 2, copied
    assert dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "big#1"}, "sk": {"N": "1"}})["Item"]["v"] == {"N": "-1"}


def test_given_the_speedup_when_an_expression_is_sent_again_then_it_is_parsed_once_and_its_tree_kept(
    aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError
    from moto.dynamodb.parsing.expressions import ExpressionTokenizer, UpdateExpressionParser  # type: ignore[attr-defined]

    dynamodb, _ = aws
    key = {"pk": {"S": "counter"}, "sk": {"N": "1"}}
    dynamodb.put_item(TableName=TABLE, Item={**key, "v": {"N": "0"}, "deadline_at": {"S": "x"}})
    tokenized: Counter[str] = Counter()
    make_list = ExpressionTokenizer.make_list
    monkeypatch.setattr(
        ExpressionTokenizer, "make_list", staticmethod(lambda text: tokenized.update([text]) or make_list(text))
    )
    update = {
        "TableName": TABLE, "Key": key, "UpdateExpression": EXPRESSIONS[0], "ReturnValues": "ALL_NEW",
        "ExpressionAttributeNames": {"#s": "status", "#v": "v"},
    }  # fmt: skip
    with Patches() as patches:
        speed_up_moto(patches)
        tree = _structure(UpdateExpressionParser.make(EXPRESSIONS[0]), {})
        # WHEN the same expression updates the item three times, with other values
        updated = [
            dynamodb.update_item(
                **update, ExpressionAttributeValues={":s": {"S": f"S{n}"}, ":u": {"N": str(n)}, ":one": {"N": "1"}}
            )
            for n in range(3)
        ]
        answers = [answer["Attributes"] for answer in updated]
        kept = _structure(UpdateExpressionParser.make(EXPRESSIONS[0]), {})
        for _ in range(2):  # an expression that does not parse is refused every time
            with pytest.raises(ClientError, match="Invalid UpdateExpression"):
                dynamodb.update_item(
                    TableName=TABLE, Key=key, UpdateExpression="SET = :x", ExpressionAttributeValues={":x": {"N": "1"}}
                )
    # THEN each update is moto's, the text was tokenized once, and the kept tree is as parsed
    assert [a["v"] for a in answers] == [{"N": "1"}, {"N": "2"}, {"N": "3"}]
    assert answers[2]["status"] == {"S": "S2"} and "deadline_at" not in answers[2]
    assert tokenized[EXPRESSIONS[0]] == 1
    assert tokenized["SET = :x"] >= 2
    assert kept == tree
