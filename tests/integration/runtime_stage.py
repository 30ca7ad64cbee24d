"""The deployed-functions runtime's test stage: the functions' code, their role and policy, and the
harness that deploys and invokes them through the embedded AWS's Lambda API.

Kept apart from test_localstage_runtime.py so that the module holds the tests; its module-scoped
``stage`` fixture (one embedded AWS, one runtime) stays there, started once.
"""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localstage.iam import enforcement
from localstage.lambdas import LambdaEmulator
from localstage.moto_lambda import decode_log_tail
from localstage.runtime import DeployedFunctions
from localstage.server import ACCOUNT_ID, REGION, EmbeddedAws

APP = """
import json, os, sys, time
import boto3

print("init of", os.environ["AWS_LAMBDA_FUNCTION_NAME"], "says", os.environ.get("GREETING"))


def echo(event, context):
    print("echo got", json.dumps(event))
    identity = boto3.client("sts").get_caller_identity()["Arn"]
    try:
        boto3.client("s3").list_buckets()
        s3 = "allowed"
    except Exception as exc:
        s3 = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
    return {"event": event, "greeting": os.environ.get("GREETING"), "identity": identity, "s3": s3,
            "pid": os.getpid(), "function": context.function_name, "remaining": context.get_remaining_time_in_millis()}


def sleepy(event, context):
    time.sleep(event.get("sleep", 0))
    return {"pid": os.getpid()}


def imports(event, context):
    found = {}
    for name in ("boto3", "awslambdaric", "pytest", "moto", "chalice"):
        try:
            __import__(name)
            found[name] = True
        except ImportError:
            found[name] = False
    return found


def batch(event, context):
    print("batch of", len(event["Records"]), [r["body"] for r in event["Records"]])
    failed = [r["messageId"] for r in event["Records"] if r["body"].startswith("fail")]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def notify(event, context):
    print("sns says", event["Records"][0]["Sns"]["Message"])


def failing(event, context):
    raise ValueError("the deployed code failed")


def version(event, context):
    return {"version": "v1", "pid": os.getpid(), "greeting": os.environ.get("GREETING")}
"""


POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "arn:aws:logs:*:*:*",
        },
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:SendMessage"],
            "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:rt-*",
        },
    ],
}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
ROLE = "rt-function-role"


def package(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


@dataclass
class Stage:
    aws: EmbeddedAws
    emulator: LambdaEmulator
    deployed: DeployedFunctions
    authorizer: enforcement.Authorizer
    role_arn: str
    client: Callable[..., Any]
    pids: set[int]

    def deploy(self, name: str, handler: str, code: bytes | None = None, **settings: Any) -> str:
        """``create_function`` as ``chalice deploy`` calls it; the name is made unique per run."""
        unique = f"{name}-{uuid.uuid4().hex[:6]}"
        self.client("lambda").create_function(
            FunctionName=unique,
            Runtime="python3.11",
            Role=self.role_arn,
            Handler=handler,
            Code={"ZipFile": code or package(APP)},
            **{"Timeout": 10, "MemorySize": 512, **settings},
        )
        return unique

    def invoke(self, name: str, payload: Any = None, **kwargs: Any) -> tuple[dict[str, Any], Any, str]:
        response = self.client("lambda").invoke(
            FunctionName=name, Payload=json.dumps(payload or {}), LogType="Tail", **kwargs
        )
        answer = json.loads(response["Payload"].read())
        if isinstance(answer, dict) and "pid" in answer:
            self.pids.add(answer["pid"])
        return response, answer, decode_log_tail(response["LogResult"])

    def log_messages(self, name: str) -> list[str]:
        events = self.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        return [event["message"] for event in events]


def runtime_processes() -> list[int]:
    """This process's children that run awslambdaric: the worker processes still alive."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == os.getpid() and b"awslambdaric" in cmdline:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()
