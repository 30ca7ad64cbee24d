"""API Gateway for REST APIs deployed to the embedded AWS (``chalice deploy`` against the local stage).

Two parts:

- the control plane's gaps in moto, filled through ``localstage.patches`` by ``install(patches)``:
  Swagger 2.0 imports (``importer``, ``swagger``) and deployments that snapshot what a stage serves
  (``deployments``);
- the data plane, ``dataplane.ApiGatewayDataPlane``: WSGI middleware answering
  ``/restapis/<api id>/<stage>/_user_request_/<path>`` through the deployed functions and authorizers.

``authorizer_results`` holds what this data plane shares with ``localstage.http_gateway``.
Importing this package imports neither moto nor Chalice.
"""

from __future__ import annotations

from localstage.patches import Patches


def install(patches: Patches) -> None:
    """Swagger 2.0 ImportRestApi/PutRestApi and deployment snapshots, undone with ``patches.undo()``."""
    from localstage.apigateway.deployments import install_deployments
    from localstage.apigateway.importer import install_import

    install_import(patches)
    install_deployments(patches)
