"""A picture upload through the running local stage: ``POST /uploads``, then the browser's form POST to S3.

The form is the one the API function signs inside the stage, with the stage's credentials; S3's
POST policy checks (``localstage.s3_post_policy``, once wired into the embedded AWS) must accept it.
"""

from __future__ import annotations

import uuid

import boto3
import httpx
import pytest

from tests.e2e.conftest import RunningStage

pytestmark = pytest.mark.e2e

PASSWORD = "Sup3r-secret"
PNG = b"\x89PNG\r\n\x1a\n" + b"p" * 2040  # 2,048 bytes


def _user_token(stage: RunningStage) -> str:
    email = f"uploader-{uuid.uuid4().hex[:10]}@example.com"
    created = httpx.post(f"{stage.api_url}/users", json={"email": email, "password": PASSWORD, "name": "U"}, timeout=15)
    assert created.status_code == 201, created.text
    login = httpx.post(f"{stage.api_url}/auth/login", json={"email": email, "password": PASSWORD}, timeout=15)
    assert login.status_code == 200, login.text
    return str(login.json()["access_token"])


def test_given_a_user_when_posting_a_picture_with_the_presigned_form_then_s3_stores_it(
    local_stage: RunningStage,
) -> None:
    token = _user_token(local_stage)
    asked = httpx.post(
        f"{local_stage.api_url}/uploads",
        json={"filename": "photo.png", "content_type": "image/png", "size": len(PNG)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
    )
    assert asked.status_code == 201, asked.text
    answer = asked.json()
    form = answer["upload"]

    posted = httpx.post(form["url"], data=form["fields"], files={"file": ("photo.png", PNG, "image/png")}, timeout=15)

    assert posted.status_code == 204, posted.text
    s3 = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("s3", endpoint_url=local_stage.aws_endpoint)
    bucket = form["url"].rstrip("/").rsplit("/", 1)[-1]
    head = s3.head_object(Bucket=bucket, Key=answer["key"])
    assert (head["ContentType"], head["ContentLength"]) == ("image/png", len(PNG))
