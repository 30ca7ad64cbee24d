"""What a stage serves: the API as it was when its deployment was made, as API Gateway serves it.

On API Gateway a stage serves its deployment, a snapshot: resources, methods, integrations,
authorizers and gateway responses changed afterwards (``put_rest_api``, ``put_gateway_response``)
take effect with the next ``create_deployment``, while stage settings (throttling, variables) apply
at once. moto keeps no snapshot, so ``install_deployments`` wraps ``RestAPI.create_deployment``
(through ``localstage.patches``) to take one (``Deployed``) for each new deployment, and to keep an
existing stage's settings when it is redeployed: AWS points the stage at the new deployment, moto
would replace the stage and drop its throttling.

A stage whose deployment predates the wrap (none was taken) is served from the API as it is now;
that is the one case where a change shows before its deployment.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from localstage.apigateway.routing import RouteTable
from localstage.patches import Patches

if TYPE_CHECKING:
    from moto.apigateway.models import Deployment, Method, RestAPI, Stage


@dataclass(frozen=True)
class IntegrationResponse:
    status_code: str
    selection_pattern: str | None
    response_parameters: Mapping[str, str]
    response_templates: Mapping[str, str]


@dataclass(frozen=True)
class Integration:
    type: str  # AWS_PROXY, MOCK, ...
    uri: str | None
    http_method: str | None
    credentials: str | None
    request_templates: Mapping[str, str]
    responses: tuple[IntegrationResponse, ...]


@dataclass(frozen=True)
class DeployedMethod:
    http_method: str
    authorization_type: str
    authorizer_id: str | None
    api_key_required: bool
    integration: Integration | None


@dataclass(frozen=True)
class DeployedResource:
    id: str
    path: str  # "/items/{id}"
    methods: Mapping[str, DeployedMethod]

    def method(self, http_method: str) -> DeployedMethod | None:
        """The method serving ``http_method``: its own, else ``ANY``."""
        return self.methods.get(http_method) or self.methods.get("ANY")


@dataclass(frozen=True)
class DeployedAuthorizer:
    id: str
    name: str
    type: str  # TOKEN, REQUEST, COGNITO_USER_POOLS
    uri: str | None
    identity_source: str | None
    result_ttl_s: int | None
    validation_expression: str | None
    credentials: str | None


@dataclass(frozen=True)
class DeployedGatewayResponse:
    status_code: str | None
    response_parameters: Mapping[str, str]
    response_templates: Mapping[str, str]


@dataclass(frozen=True)
class Deployed:
    """One deployment of a REST API: what its stages serve."""

    api_id: str
    account: str
    region: str
    resources: tuple[DeployedResource, ...]
    authorizers: Mapping[str, DeployedAuthorizer]
    gateway_responses: Mapping[str, DeployedGatewayResponse]
    binary_media_types: tuple[str, ...]
    api_key_source: str
    policy: str | None  # the API's resource policy (x-amazon-apigateway-policy), if any
    routes: RouteTable[DeployedResource] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "routes", RouteTable((r.path, r) for r in self.resources))


def snapshot_of(api: RestAPI) -> Deployed:
    """The API as it is now, in plain values (later changes to moto's objects do not reach it)."""
    paths = _paths(api)
    return Deployed(
        api_id=str(api.id),
        account=str(api.account_id),
        region=str(api.region_name),
        resources=tuple(
            DeployedResource(
                id=str(r.id), path=paths[r.id], methods={m: _method(v) for m, v in r.resource_methods.items()}
            )
            for r in api.resources.values()
        ),
        authorizers={
            str(a.id): DeployedAuthorizer(
                id=str(a.id),
                name=str(a.name),
                type=str(a.type),
                uri=a.authorizer_uri,
                identity_source=a.identity_source,
                result_ttl_s=None if a.authorizer_result_ttl is None else int(a.authorizer_result_ttl),
                validation_expression=a.identity_validation_expression,
                credentials=a.authorizer_credentials,
            )
            for a in api.authorizers.values()
        },
        gateway_responses={
            kind: DeployedGatewayResponse(
                status_code=None if g.status_code is None else str(g.status_code),
                response_parameters=dict(g.response_parameters or {}),
                response_templates=dict(g.response_templates or {}),
            )
            for kind, g in api.gateway_responses.items()
        },
        binary_media_types=tuple(api.binaryMediaTypes),
        api_key_source=str(api.api_key_source or "HEADER"),
        policy=api.policy or None,
    )


def _paths(api: RestAPI) -> dict[str, str]:
    """Resource id -> path, from the parent links (moto's ``get_path`` would look each parent up in a backend)."""
    found: dict[str, str] = {}

    def path_of(resource_id: str) -> str:
        if resource_id not in found:
            resource = api.resources[resource_id]
            if resource.parent_id is None:
                found[resource_id] = "/"
            else:
                parent = path_of(resource.parent_id)
                found[resource_id] = f"{parent.rstrip('/')}/{resource.path_part}"
        return found[resource_id]

    for resource_id in api.resources:
        path_of(resource_id)
    return found


def _method(method: Method) -> DeployedMethod:
    integration = method.method_integration
    return DeployedMethod(
        http_method=str(method.http_method),
        authorization_type=str(method.authorization_type or "NONE"),
        authorizer_id=method.authorizer_id,
        api_key_required=bool(method.api_key_required),
        integration=None
        if integration is None
        else Integration(
            type=str(integration.integration_type).upper(),
            uri=integration.uri,
            http_method=integration.http_method,
            credentials=integration.credentials,
            request_templates=dict(integration.request_templates or {}),
            responses=tuple(
                IntegrationResponse(
                    status_code=str(r.status_code),
                    selection_pattern=r.selection_pattern or None,
                    response_parameters=dict(r.response_parameters or {}),
                    response_templates={k: v for k, v in (r.response_templates or {}).items() if v},
                )
                for r in (integration.integration_responses or {}).values()
            ),
        ),
    )


class _Snapshots:
    """Deployment -> its snapshot, for every deployment made while the wrap is installed."""

    def __init__(self) -> None:
        self._by_deployment: dict[tuple[str, str, str, str], Deployed] = {}
        self._lock = threading.Lock()

    def keep(self, api: RestAPI, deployment_id: str) -> None:
        snapshot = snapshot_of(api)
        with self._lock:
            self._by_deployment[(snapshot.account, snapshot.region, snapshot.api_id, deployment_id)] = snapshot

    def get(self, api: RestAPI, deployment_id: str | None) -> Deployed | None:
        with self._lock:
            return self._by_deployment.get((str(api.account_id), str(api.region_name), str(api.id), str(deployment_id)))


_snapshots = _Snapshots()


def deployed_for(api: RestAPI, stage: Stage) -> Deployed:
    """What ``stage`` serves: its deployment's snapshot, or the API as it is now if none was taken."""
    return _snapshots.get(api, stage.deployment_id) or snapshot_of(api)


def install_deployments(patches: Patches) -> None:
    """Snapshot each new deployment and keep a redeployed stage's settings (undone with ``patches``)."""
    from moto.apigateway.models import RestAPI
    from moto.apigateway.responses import APIGatewayResponse

    patches.wrap("moto", RestAPI, "create_deployment", _deploying)
    patches.wrap("moto", APIGatewayResponse, "create_deployment", _with_tracing)


def _with_tracing(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto drops CreateDeployment's ``tracingEnabled`` (how ``chalice deploy`` turns on the API's X-Ray);
    API Gateway sets it on the stage it creates or moves, and leaves it as it is when not given."""

    @functools.wraps(original)
    def create_deployment(self: Any) -> Any:
        answer = original(self)
        tracing = self._get_param("tracingEnabled")
        name = self._get_param("stageName")
        if tracing is not None and name:
            api_id = self.path.replace("/restapis/", "", 1).split("/")[0]
            self.backend.get_rest_api(api_id).stages[name].tracing_enabled = bool(tracing)
        return answer

    return create_deployment


def _deploying(original: Callable[..., Deployment]) -> Callable[..., Deployment]:
    @functools.wraps(original)
    def create_deployment(api: RestAPI, name: str, description: str, stage_variables: Any = None) -> Deployment:
        kept = api.stages.get(name) if name else None
        deployment = original(api, name, description, stage_variables)
        if kept is not None:
            # CreateDeployment to an existing stage moves the stage to the new deployment; its
            # settings (throttling, logging, tracing) stay, its variables take the ones given.
            kept.deployment_id = deployment.id
            kept.variables.update(stage_variables or {})
            api.stages[name] = kept
        _snapshots.keep(api, str(deployment.id))
        return deployment

    return create_deployment
