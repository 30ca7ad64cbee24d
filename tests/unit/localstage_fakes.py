"""Fakes the local stage's unit tests share: a Lambda emulator whose telemetry goes nowhere."""

from __future__ import annotations

from typing import Any

from localstage.lambdas import LambdaEmulator
from localstage.telemetry import Telemetry


class NullAws:
    """Logs and CloudWatch that accept everything: these tests look at invocations, not telemetry."""

    class exceptions:  # lowercase: the shape of a boto3 client
        ResourceAlreadyExistsException = KeyError

    def __getattr__(self, name: str) -> Any:
        return lambda **kwargs: {}


def quiet_emulator(**options: Any) -> LambdaEmulator:
    """A Lambda emulator with ``options``, no memory measurement, and telemetry to ``NullAws``."""
    return LambdaEmulator(Telemetry(NullAws(), NullAws()), measure_memory=False, **options)
