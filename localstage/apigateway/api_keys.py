"""``apiKeyRequired`` as API Gateway checks it: an enabled key of a usage plan that includes the stage.

The key comes from the ``x-api-key`` header (the API's ``apiKeySource`` ``HEADER``) or from the
authorizer's ``usageIdentifierKey`` (``AUTHORIZER``). Usage plans' throttling and quotas are not
modelled. Reads moto's API Gateway backend (its keys, plans and plan keys).
"""

from __future__ import annotations


def key_allows(account: str, region: str, api_id: str, stage: str, value: str | None) -> bool:
    if not value:
        return False
    from moto.apigateway.models import apigateway_backends

    backend = apigateway_backends[account][region]
    key_ids = {key.id for key in backend.keys.values() if key.value == value and key.enabled}
    for plan_id, plan_keys in backend.usage_plan_keys.items():
        plan = backend.usage_plans.get(plan_id)
        if plan is None or not key_ids & set(plan_keys):
            continue
        if any(s.get("apiId") == api_id and s.get("stage") == stage for s in plan.api_stages):
            return True
    return False
