"""``UpdateDomainName``, which ``chalice deploy`` calls on every deploy of a stage with a custom domain.

moto 5.2.5 creates, reads and deletes API Gateway domain names but has no ``UpdateDomainName``: the
``PATCH /domainnames/<name>`` it receives ends in a 500, so a second ``make deploy`` of a stage with a
``domain`` (``infra.stage_settings``) failed half-way. ``install_domain_names`` answers that call as API
Gateway does for the fields Chalice patches (``replace`` of the certificate, its name and the security
policy), on moto's own ``DomainName``, and returns the domain as ``GetDomainName`` would. Any other
operation or path is a 400 ``BadRequestException`` naming it, never a silent success.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from moto.apigateway.responses import APIGatewayResponse

from localstage.patches import Patches

_DOMAIN_PATH = re.compile(r"/domainnames/(?P<name>[^/]+)/?")
# Patch paths API Gateway accepts on a domain name -> moto's DomainName attribute.
FIELDS = {
    "/certificateArn": "certificate_arn",
    "/certificateName": "certificate_name",
    "/regionalCertificateArn": "regional_certificate_arn",
    "/regionalCertificateName": "regional_certificate_name",
    "/securityPolicy": "security_policy",
}
Answer = tuple[int, dict[str, Any], str]


def install_domain_names(patches: Patches) -> None:
    patches.wrap("moto", APIGatewayResponse, "call_action", _with_update_domain_name)


def _with_update_domain_name(original: Callable[[Any], Answer]) -> Callable[[Any], Answer]:
    def call_action(response: Any) -> Answer:
        match = _DOMAIN_PATH.fullmatch(response.path) if response.method == "PATCH" else None
        if match is None:
            return original(response)
        operations = json.loads(response.body or "{}").get("patchOperations", [])
        return update_domain_name(response.backend, unquote(match["name"]), operations)

    return call_action


def update_domain_name(backend: Any, name: str, operations: list[dict[str, str]]) -> Answer:
    """Apply ``operations`` to the domain ``name`` of ``backend`` (moto's ``APIGatewayBackend``)."""
    domain = backend.get_domain_name(name)  # moto's own 404 when there is none
    for operation in operations:
        field = FIELDS.get(operation.get("path", ""))
        if operation.get("op") != "replace" or field is None:
            message = f"Invalid patch operation {operation.get('op')} on {operation.get('path')} (local stage)"
            error = {"__type": "BadRequestException", "message": message}
            return 400, {"status": 400, "x-amzn-ErrorType": "BadRequestException"}, json.dumps(error)
    for operation in operations:
        setattr(domain, FIELDS[operation["path"]], operation.get("value"))
    return 200, {"status": 200}, json.dumps(domain.to_json())
