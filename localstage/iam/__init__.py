"""IAM on the local stage: each function calls AWS with its own role, and the embedded AWS enforces it.

The pieces, in the order a call meets them:

- ``stage``: the functions' roles from ``infra.policies`` (the documents ``make package`` emits),
  ``LOCAL_IAM`` / ``LOCAL_IAM_REVOKE``, and Step Functions tasks acting as their state machine's role;
- ``principals``: the role session each thread acts for, and botocore signing with it;
- ``wire`` and ``actions``: from an HTTP request to the (action, resource, condition keys) IAM checks;
- ``policy``: AWS's evaluation logic (explicit deny, identity and resource policies, conditions);
- ``moto_state``: the role sessions, role policies and resource policies moto holds;
- ``enforcement``: the middleware in front of moto, the in-process checks for service principals,
  and the ledger behind ``GET /_localstage/iam``;
- ``errors``: the refusal, shaped as each service shapes ``AccessDenied``.

See ``docs/local-stage.md`` ("IAM") for what is enforced and what is not.
"""
