"""The Lambda runtime for deployed code: functions created through the Lambda API run as Lambda runs them.

The stage's own functions run in-process (``localstage.lambdas``). A function ``chalice deploy`` (or
any Lambda API client) creates in the embedded AWS comes with its own code; this package runs it
without Docker: each execution environment is a worker process with the code unpacked as
``LAMBDA_TASK_ROOT``, the runtime's libraries, the function's variables and its role's credentials,
bootstrapped by the official runtime interface client (``awslambdaric``) against a Runtime API the
stage serves (``api``). The emulator still owns every Lambda semantic around the handler.

- ``api``: the Runtime API of one environment;
- ``worker``: one environment's process, its output, its kill;
- ``code``: code unpacked once per CodeSha256, the runtime's libraries (boto3, awslambdaric) only;
- ``environments``: the ``EnvironmentRuntime`` the emulator starts and retires environments with;
- ``deployed``: ``DeployedFunctions``, discovery and registration: the entry point.
"""

from localstage.runtime.deployed import DeployedFunctions

__all__ = ["DeployedFunctions"]
