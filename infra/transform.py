"""The packaged SAM template as CloudFormation will expand it: ``aws-sam-translator``, offline.

CloudFormation expands ``AWS::Serverless-2016-10-31`` on its side at deploy time, so a template
that does not transform fails only there, after the upload. This runs the same translator here,
after doing what ``aws cloudformation package`` does first: each local ``CodeUri`` (and the other
uploadable paths) becomes the ``s3://`` URI of the uploaded file, named as that command names it, by
the MD5 of its bytes. Checks of the result (cfn-lint, checkov) see what the stack will hold,
including what SAM generates: the ``live`` alias and its version, permissions, the API's stage.

    cloudformation = to_cloudformation(sam_path)     # no Transform, no AWS::Serverless::* left
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.public.parser import Parser
from samtranslator.public.translator import Translator
from samtranslator.translator.arn_generator import ArnGenerator

Json = dict[str, Any]

ARTIFACT_BUCKET = "artifact-bucket"  # any name: the check needs the URI's shape, not the bucket
REGION = "us-east-1"
# What `aws cloudformation package` uploads for the SAM types, when given a local path.
UPLOADED = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}


class TransformError(Exception):
    """The SAM template does not transform; the message lists each of the translator's reasons."""


def with_s3_uris(sam: Json, template_dir: Path, bucket: str = ARTIFACT_BUCKET) -> Json:
    """A copy of ``sam`` whose local paths are ``s3://bucket/<md5>`` URIs; each path must name a file."""
    packaged = copy.deepcopy(sam)
    for name, resource in packaged.get("Resources", {}).items():
        key = UPLOADED.get(resource.get("Type", ""))
        properties = resource.get("Properties", {})
        local = properties.get(key) if key else None
        if not isinstance(local, str) or local.startswith("s3://"):
            continue
        path = template_dir / local
        if not path.is_file():
            raise TransformError(f"{name}: {key} {local!r} names no file beside the template ({path})")
        digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()  # the CLI's object key
        properties[key] = f"s3://{bucket}/{digest}"
    return packaged


def transform(sam: Json, region: str = REGION) -> Json:
    """``sam`` (with S3 URIs) translated to plain CloudFormation, as in ``region``.

    No managed-policy map is given: the functions name their own roles, so the translator would need
    one (which it reads from IAM) only for a policy named in a function's ``Policies``, an error here.
    """
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    previous_region = ArnGenerator.BOTO_SESSION_REGION_NAME  # the translator sets this class attribute
    try:
        translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=region), metrics=metrics)
        return translator.translate(copy.deepcopy(sam), parameter_values={}, get_managed_policy_map=dict)
    except InvalidDocumentException as exc:
        reasons = "\n".join(f"- {cause.message}" for cause in exc.causes)
        raise TransformError(f"aws-sam-translator refused the template:\n{reasons}") from exc
    finally:
        ArnGenerator.BOTO_SESSION_REGION_NAME = previous_region
        metrics.publish()


def to_cloudformation(sam_path: Path, region: str = REGION) -> Json:
    """The SAM template at ``sam_path`` (beside its ``deployment.zip``) as CloudFormation."""
    return transform(with_s3_uris(json.loads(sam_path.read_text()), sam_path.parent), region)
