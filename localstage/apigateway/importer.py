"""ImportRestApi and PutRestApi for Swagger 2.0 documents, filled into moto's API Gateway.

``install_import`` wraps ``APIGatewayBackend.import_rest_api`` and ``put_rest_api`` through
``localstage.patches`` (version-checked, undone with the ``Patches``): a Swagger 2.0 document is
read by ``swagger.read_swagger`` and built through the backend's own calls (``create_resource``,
``put_method``, ``put_integration``...), so moto's validation of paths and integration URIs and its
stored shapes stay moto's; an OpenAPI 3 document still goes to moto's importer.

Why build, rather than convert Swagger 2.0 into the OpenAPI 3 moto reads: moto's importer drops
what matters here (security definitions, authorizers, a method's authorization, binary media types,
the resource policy, gateway responses, method request parameters), and a conversion cannot make
it keep them.

As API Gateway does: an import is all or nothing (a failed document leaves no API behind, a failed
put leaves the API as it was); ``mode=overwrite`` replaces the definition (resources, methods,
authorizers, models, gateway responses, binary media types, policy: "any API configuration not
explicitly included in the import body is reset"), keeping the id, the root resource, stages and
deployments; ``mode=merge`` (the default) replaces the methods the document defines and keeps the
rest. Not read: the import's ``parameters`` (``endpointConfigurationTypes``, ``basepath``,
``ignore``), ``failOnWarnings`` (no warnings are produced), documentation parts, request validators.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from localstage.apigateway.import_plan import ImportPlan, MethodPlan
from localstage.apigateway.swagger import SwaggerImportError, is_swagger2, read_swagger
from localstage.patches import Patches

if TYPE_CHECKING:
    from moto.apigateway.models import APIGatewayBackend, Resource, RestAPI

MERGE, OVERWRITE = "merge", "overwrite"
_DEFINITION_DICTS = ("resources", "authorizers", "models", "gateway_responses")  # what an import replaces


def install_import(patches: Patches) -> None:
    """Swagger 2.0 documents accepted by ImportRestApi and PutRestApi (undone with ``patches``)."""
    from moto.apigateway.models import APIGatewayBackend

    patches.wrap("moto", APIGatewayBackend, "import_rest_api", _importing)
    patches.wrap("moto", APIGatewayBackend, "put_rest_api", _putting)


def _importing(original: Callable[..., RestAPI]) -> Callable[..., RestAPI]:
    @functools.wraps(original)
    def import_rest_api(backend: APIGatewayBackend, api_doc: dict[str, Any], fail_on_warnings: bool) -> RestAPI:
        if not is_swagger2(api_doc):
            return original(backend, api_doc, fail_on_warnings)
        return import_swagger(backend, api_doc)

    return import_rest_api


def _putting(original: Callable[..., RestAPI]) -> Callable[..., RestAPI]:
    @functools.wraps(original)
    def put_rest_api(
        backend: APIGatewayBackend, function_id: str, api_doc: dict[str, Any], fail_on_warnings: bool, mode: str = MERGE
    ) -> RestAPI:
        if not is_swagger2(api_doc):
            return original(backend, function_id, api_doc, fail_on_warnings, mode)
        return put_swagger(backend, function_id, api_doc, mode)

    return put_rest_api


def import_swagger(backend: APIGatewayBackend, document: dict[str, Any]) -> RestAPI:
    """A new REST API built from ``document``; nothing is left behind if any part is refused."""
    plan = _plan(document)
    api = backend.create_rest_api(name=plan.title, description=plan.description or "")
    try:
        _apply(backend, api, plan, overwrite=True)
    except Exception:
        backend.apis.pop(api.id, None)  # API Gateway creates nothing from a refused document
        raise
    return api


def put_swagger(backend: APIGatewayBackend, api_id: str, document: dict[str, Any], mode: str) -> RestAPI:
    """``document`` merged into, or overwriting, the API ``api_id``; unchanged if any part is refused."""
    from moto.apigateway.exceptions import InvalidOpenApiModeException

    if mode not in (MERGE, OVERWRITE):
        raise InvalidOpenApiModeException()
    api = backend.get_rest_api(api_id)  # RestAPINotFound, as moto answers it
    plan = _plan(document)
    with _restored_on_failure(api):
        _apply(backend, api, plan, overwrite=mode == OVERWRITE)
    return api


def _plan(document: dict[str, Any]) -> ImportPlan:
    from moto.apigateway.exceptions import BadRequestException

    try:
        return read_swagger(document)
    except SwaggerImportError as exc:
        raise BadRequestException(f"Errors found during import: {exc}") from exc


@contextmanager
def _restored_on_failure(api: RestAPI) -> Iterator[None]:
    """Put ``api`` back as it was if the block raises (its dicts are replaced or refilled, never mutated in place)."""
    scalars = {name: getattr(api, name) for name in ("name", "description", "version", "policy", "api_key_source")}
    containers = {name: dict(getattr(api, name)) for name in _DEFINITION_DICTS}
    methods = {resource_id: dict(r.resource_methods) for resource_id, r in api.resources.items()}
    binary = list(api.binaryMediaTypes)
    try:
        yield
    except Exception:
        for name, value in {**scalars, **containers}.items():
            setattr(api, name, value)
        for resource_id, saved in methods.items():
            api.resources[resource_id].resource_methods = saved
        api.binaryMediaTypes = binary
        raise


def _apply(backend: APIGatewayBackend, api: RestAPI, plan: ImportPlan, overwrite: bool) -> None:
    if overwrite:
        root = api.resources[api.root_resource_id]
        root.resource_methods = {}
        api.resources = {root.id: root}
        api.authorizers, api.models, api.gateway_responses = {}, {}, {}
        api.binaryMediaTypes = list(plan.binary_media_types)
        api.policy = plan.policy
        api.description = plan.description or ""
        api.api_key_source = plan.api_key_source or "HEADER"
    else:
        added = [t for t in plan.binary_media_types if t not in api.binaryMediaTypes]
        api.binaryMediaTypes = [*api.binaryMediaTypes, *added]
        api.policy = plan.policy if plan.policy is not None else api.policy
        api.api_key_source = plan.api_key_source or api.api_key_source
    api.name = plan.title
    api.version = plan.version or api.version
    authorizer_ids = _put_authorizers(backend, api, plan)
    for name, schema in plan.models.items():
        backend.create_model(api.id, name, "application/json", "", schema)
    for kind, response in plan.gateway_responses.items():
        status = cast(Any, response.status_code)  # moto's annotation says int; API Gateway's wire value is a string
        api.put_gateway_response(kind, status, response.response_parameters, response.response_templates)
    for path in sorted(plan.paths, key=lambda p: p.count("/") if p != "/" else 0):  # parents first
        resource = _resource_at(backend, api, path)
        for method in plan.paths[path]:
            _put_method(backend, api, resource, method, authorizer_ids)


def _put_authorizers(backend: APIGatewayBackend, api: RestAPI, plan: ImportPlan) -> dict[str, str]:
    """Create the document's authorizers (merge: one of the same name is replaced under its id); name -> id."""
    existing = {str(a.name): str(a.id) for a in api.authorizers.values()}
    ids = {}
    for name, authorizer in plan.authorizers.items():
        settings: dict[str, Any] = {
            "provider_arns": list(authorizer.provider_arns) or None,
            "auth_type": authorizer.auth_type,
            "authorizer_uri": authorizer.authorizer_uri,
            "authorizer_credentials": authorizer.credentials,
            "identity_source": authorizer.identity_source,
            "authorizer_result_ttl": authorizer.result_ttl_s,
        }
        if name in existing:
            created = api.create_authorizer(existing[name], name, authorizer.type, **settings)
        else:
            created = backend.create_authorizer(api.id, name, authorizer.type, **settings)
        # moto passes the expression under a misspelt keyword its Authorizer never reads: set it here.
        created.identity_validation_expression = authorizer.validation_expression
        ids[name] = str(created.id)
    return {**existing, **ids}


def _resource_at(backend: APIGatewayBackend, api: RestAPI, path: str) -> Resource:
    """The resource at ``path``, creating it and its missing ancestors (moto checks each path part)."""
    current = api.resources[api.root_resource_id]
    for part in [p for p in path.split("/") if p]:
        child = next((r for r in api.resources.values() if r.parent_id == current.id and r.path_part == part), None)
        current = child if child is not None else backend.create_resource(api.id, current.id, part)
    return current


def _put_method(
    backend: APIGatewayBackend, api: RestAPI, resource: Resource, method: MethodPlan, authorizer_ids: dict[str, str]
) -> None:
    verb = method.http_method
    backend.put_method(
        api.id,
        resource.id,
        verb,
        method.authorization_type,
        api_key_required=method.api_key_required,
        request_parameters=method.request_parameters or None,
        operation_name=method.operation_name,
        authorizer_id=authorizer_ids.get(method.authorizer) if method.authorizer else None,
        authorization_scopes=cast(Any, list(method.scopes) or None),
    )
    for response in method.responses:
        backend.put_method_response(
            api.id, resource.id, verb, response.status_code, response.response_models, response.response_parameters
        )
    plan = method.integration
    if plan is None:
        return
    integration = backend.put_integration(
        api.id,
        resource.id,
        verb,
        integration_type=plan.type,
        uri=cast(Any, plan.uri),  # a MOCK integration has none
        integration_method=cast(Any, plan.http_method),
        credentials=plan.credentials,
        request_templates=plan.request_templates,
        passthrough_behavior=plan.passthrough_behavior,
        cache_namespace=resource.id,  # API Gateway's default namespace is the resource id
        timeout_in_millis=cast(Any, plan.timeout_ms),  # a number on the wire, as API Gateway returns it
        request_parameters=plan.request_parameters,
        content_handling=plan.content_handling,
    )
    integration.cache_key_parameters = list(plan.cache_key_parameters)
    for mapped in plan.responses:
        backend.put_integration_response(
            api.id,
            resource.id,
            verb,
            mapped.status_code,
            cast(Any, mapped.selection_pattern),  # None: the default response, stored without a pattern
            mapped.response_templates,
            mapped.response_parameters,
            mapped.content_handling,
        )
