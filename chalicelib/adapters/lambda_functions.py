"""The stage's Lambda functions, from ListFunctions (every page) or by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.domain.usage import FunctionConfig


def _config(entry: Mapping[str, Any]) -> FunctionConfig:
    architectures = entry.get("Architectures") or ["x86_64"]
    return FunctionConfig(
        name=str(entry["FunctionName"]),
        memory_mb=int(entry.get("MemorySize", 128)),
        architecture=str(architectures[0]),
        timeout_seconds=int(entry.get("Timeout", 3)),
        ephemeral_mb=int((entry.get("EphemeralStorage") or {}).get("Size", 512)),
    )


class LambdaFunctionCatalog:
    """``FunctionCatalog`` on the Lambda API: one ListFunctions call per 50 functions of the account."""

    def __init__(self, client: Any) -> None:
        self._lambda = client

    def functions(self, prefix: str) -> list[FunctionConfig]:
        found: list[FunctionConfig] = []
        for page in self._lambda.get_paginator("list_functions").paginate():
            found.extend(_config(f) for f in page.get("Functions", []) if str(f["FunctionName"]).startswith(prefix))
        return sorted(found, key=lambda f: f.name)

    def named(self, names: Sequence[str]) -> list[FunctionConfig]:
        return [_config(self._lambda.get_function_configuration(FunctionName=name)) for name in names]
