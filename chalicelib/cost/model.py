"""AWS Lambda cost, exactly: requests, INVOKE and INIT duration, ephemeral storage, volume tiers, free tier.

Counts come in as sums (the ``Sum`` statistic, or a count of REPORT lines), never as a number of
datapoints; durations are billed milliseconds, each invocation rounded up on its own.

>>> cost = lambda_cost(3_000_000, billed_ms_per_invocation=120, memory_mb=512)
>>> cost.requests, cost.duration, cost.total
(Decimal('0.6000000'), Decimal('3.0000060000'), Decimal('3.6000060000'))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from chalicelib.cost.billing import CostModelError, Number, billed_ms, non_negative, round_up_to, tiered_cost
from chalicelib.cost.prices import US_EAST_1, Architecture, LambdaPrices, flat

MB_PER_GB = 1024
MS_PER_SECOND = 1000
MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 10_240


def gb_seconds(memory_mb: Number, ms: Number) -> Decimal:
    """Memory in GB times duration in seconds; exact, since 1024 and 1000 divide without remainder."""
    return non_negative(memory_mb, "memory") * non_negative(ms, "duration") / (MB_PER_GB * MS_PER_SECOND)


@dataclass(frozen=True)
class LambdaCost:
    invocations: Decimal
    billed_ms: Decimal  # INVOKE phase, summed after rounding each invocation up
    init_billed_ms: Decimal  # INIT phase of cold starts, billed since 1 Aug 2025
    gb_seconds: Decimal  # INVOKE + INIT
    requests: Decimal
    duration: Decimal
    init: Decimal
    ephemeral: Decimal

    @property
    def total(self) -> Decimal:
        return self.requests + self.duration + self.init + self.ephemeral


def lambda_cost(
    invocations: Number,
    *,
    memory_mb: int,
    billed_ms_per_invocation: Number | None = None,
    total_billed_ms: Number | None = None,
    architecture: Architecture = Architecture.X86_64,
    ephemeral_mb: int = 512,
    init_ms: Number = 0,
    cold_starts: Number = 0,
    free_tier: bool = False,
    monthly_gb_seconds_before: Number = 0,
    monthly_requests_before: Number = 0,
    prices: LambdaPrices = US_EAST_1.lambda_,
) -> LambdaCost:
    """Cost of ``invocations`` (a Sum) given billed INVOKE milliseconds, either per invocation or in total.

    ``init_ms`` is the billed INIT duration of one cold start. REPORT lines' ``Billed Duration``
    already includes INIT since 1 Aug 2025: when passing their sum, leave ``init_ms`` at 0.
    ``monthly_gb_seconds_before`` is what this architecture already used this month (tiers are
    cumulative); the free tier, when on, covers the month's first requests and GB-seconds.

    >>> lambda_cost(1, total_billed_ms=2, memory_mb=1024).duration
    Decimal('3.33334E-8')
    """
    if (billed_ms_per_invocation is None) == (total_billed_ms is None):
        raise CostModelError("give exactly one of billed_ms_per_invocation and total_billed_ms")
    count = non_negative(invocations, "invocations")
    if total_billed_ms is None:
        invoke_ms = count * non_negative(billed_ms_per_invocation or 0, "billed ms")
    else:
        invoke_ms = non_negative(total_billed_ms, "total billed ms")
    init_total = non_negative(cold_starts, "cold starts") * non_negative(init_ms, "init ms")
    return price_lambda_usage(
        count,
        invoke_ms,
        init_total,
        memory_mb=memory_mb,
        architecture=architecture,
        ephemeral_mb=ephemeral_mb,
        free_tier=free_tier,
        monthly_gb_seconds_before=monthly_gb_seconds_before,
        monthly_requests_before=monthly_requests_before,
        prices=prices,
    )


def lambda_cost_of_durations(
    raw_durations_ms: Iterable[Number],
    *,
    memory_mb: int,
    raw_init_durations_ms: Iterable[Number] = (),
    architecture: Architecture = Architecture.X86_64,
    ephemeral_mb: int = 512,
    free_tier: bool = False,
    monthly_gb_seconds_before: Number = 0,
    prices: LambdaPrices = US_EAST_1.lambda_,
) -> LambdaCost:
    """Cost of one invocation per raw duration (e.g. REPORT ``Duration``), each rounded up to 1 ms.

    >>> lambda_cost_of_durations(["1.2", "1.2"], memory_mb=1024).billed_ms
    Decimal('4')
    """
    invocations = 0
    invoke_ms = 0
    for raw in raw_durations_ms:
        invocations += 1
        invoke_ms += billed_ms(raw, prices.duration_increment_ms)
    init_total = sum((billed_ms(raw, prices.duration_increment_ms) for raw in raw_init_durations_ms), 0)
    return price_lambda_usage(
        Decimal(invocations),
        Decimal(invoke_ms),
        Decimal(init_total),
        memory_mb=memory_mb,
        architecture=architecture,
        ephemeral_mb=ephemeral_mb,
        free_tier=free_tier,
        monthly_gb_seconds_before=monthly_gb_seconds_before,
        prices=prices,
    )


def price_lambda_usage(
    invocations: Decimal,
    invoke_ms: Decimal,
    init_ms: Decimal,
    *,
    memory_mb: int,
    architecture: Architecture,
    ephemeral_mb: int,
    free_tier: bool,
    monthly_gb_seconds_before: Number = 0,
    monthly_requests_before: Number = 0,
    free_gb_seconds_used_before: Number | None = None,
    prices: LambdaPrices = US_EAST_1.lambda_,
) -> LambdaCost:
    """Price month-level totals: tiers over cumulative GB-seconds, free tier over the month's first units.

    ``free_gb_seconds_used_before`` defaults to ``monthly_gb_seconds_before``; it differs only when
    both architectures run (the free tier is shared, the tiers are per architecture).
    """
    if not MIN_MEMORY_MB <= memory_mb <= MAX_MEMORY_MB:
        raise CostModelError(f"memory must be {MIN_MEMORY_MB}..{MAX_MEMORY_MB} MB, got {memory_mb}")
    if not prices.free_ephemeral_mb <= ephemeral_mb <= MAX_MEMORY_MB:
        raise CostModelError(f"ephemeral storage must be {prices.free_ephemeral_mb}..{MAX_MEMORY_MB} MB")
    tiers = prices.architecture(architecture).duration
    before = non_negative(monthly_gb_seconds_before, "monthly GB-seconds before")
    free_before = before
    if free_gb_seconds_used_before is not None:
        free_before = non_negative(free_gb_seconds_used_before, "free GB-seconds used before")
    invoke_gbs = gb_seconds(memory_mb, invoke_ms)
    init_gbs = gb_seconds(memory_mb, init_ms)
    # What is left of the free allowance covers the first GB-seconds of this usage, expressed in
    # the tier cursor's coordinates (the two cursors differ when both architectures run).
    free_left = max(Decimal(0), prices.free_gb_seconds - free_before) if free_tier else Decimal(0)
    free = before + free_left
    duration = tiered_cost(tiers, before, invoke_gbs, free)
    init = tiered_cost(tiers, before + invoke_gbs, init_gbs, free)
    free_requests = prices.free_requests if free_tier else 0
    requests = tiered_cost(flat(prices.request), monthly_requests_before, invocations, free_requests)
    extra_storage_gbs = gb_seconds(ephemeral_mb - prices.free_ephemeral_mb, invoke_ms + init_ms)
    return LambdaCost(
        invocations=invocations,
        billed_ms=invoke_ms,
        init_billed_ms=init_ms,
        gb_seconds=invoke_gbs + init_gbs,
        requests=requests,
        duration=duration,
        init=init,
        ephemeral=extra_storage_gbs * prices.ephemeral_storage,
    )


@dataclass(frozen=True)
class ProvisionedConcurrencyCost:
    concurrency: Decimal
    requests: Decimal
    duration: Decimal

    @property
    def total(self) -> Decimal:
        return self.concurrency + self.requests + self.duration


def provisioned_concurrency_cost(
    concurrency: int,
    enabled_seconds: int,
    *,
    memory_mb: int,
    invocations: Number,
    total_billed_ms: Number,
    architecture: Architecture = Architecture.X86_64,
    prices: LambdaPrices = US_EAST_1.lambda_,
) -> ProvisionedConcurrencyCost:
    """Provisioned concurrency: configured GB-seconds (rounded up to 5 minutes) plus its lower duration price.

    The free tier does not apply to functions with provisioned concurrency.
    """
    arch = prices.architecture(architecture)
    seconds = round_up_to(enabled_seconds, prices.provisioned_increment_seconds)
    configured_gbs = gb_seconds(memory_mb, Decimal(concurrency) * seconds * MS_PER_SECOND)
    return ProvisionedConcurrencyCost(
        concurrency=configured_gbs * arch.provisioned_concurrency,
        requests=non_negative(invocations, "invocations") * prices.request,
        duration=gb_seconds(memory_mb, total_billed_ms) * arch.provisioned_duration,
    )
