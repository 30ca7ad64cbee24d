"""A stage provisioned once per module in moto, made empty again before each test.

Provisioning the stage's template in a fresh moto costs 0.5 to 2 s of CPU a test (the state machine's
definition parsed, a user pool's signing key imported, a dozen botocore models loaded), and a module's
tests only need its resources to be there and hold nothing another test left. So a module provisions
once and each test starts from :func:`empty_stage`: every table without items, every user pool without
users, every bucket without objects, every queue without messages.

A queue is drained, not purged: AWS (and moto, as AWS) refuses a second ``PurgeQueue`` within 60 s.
A delayed message is waited for (a few seconds at most); one still in flight (received, neither
deleted nor visible again) cannot be drained, and :func:`empty_stage` fails the test that finds one,
since the test before it left work running.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

ClientFor = Callable[[str], Any]


def empty_tables(dynamodb: Any) -> None:
    for table in dynamodb.list_tables()["TableNames"]:
        keys = [k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                dynamodb.delete_item(TableName=table, Key={k: item[k] for k in keys})


def empty_user_pools(cognito: Any) -> None:
    for pool in cognito.list_user_pools(MaxResults=60)["UserPools"]:
        for page in cognito.get_paginator("list_users").paginate(UserPoolId=pool["Id"]):
            for user in page["Users"]:
                cognito.admin_delete_user(UserPoolId=pool["Id"], Username=user["Username"])


def empty_buckets(s3: Any) -> None:
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket["Name"], Delete={"Objects": keys, "Quiet": True})


def drain_queues(sqs: Any, delayed_wait_s: float = 5.0) -> None:
    """Every queue's messages received and deleted; a delayed one (a payment re-check the test before
    scheduled) is waited for, up to ``delayed_wait_s``, and drained when it comes due."""
    deadline = time.monotonic() + delayed_wait_s
    for url in sqs.list_queues().get("QueueUrls", []):
        while True:
            while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                )
            counts = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
            )["Attributes"]
            left = {name: count for name, count in counts.items() if int(count)}
            if not left:
                break
            delayed_only = set(left) == {"ApproximateNumberOfMessagesDelayed"}
            assert delayed_only and time.monotonic() < deadline, (
                f"{url} still holds messages the test before left in flight or delayed: {left}"
            )
            time.sleep(0.1)


def empty_stage(client: ClientFor) -> None:
    """Every table, user pool, bucket and queue of the account emptied; the resources themselves kept."""
    empty_tables(client("dynamodb"))
    empty_user_pools(client("cognito-idp"))
    empty_buckets(client("s3"))
    drain_queues(client("sqs"))
