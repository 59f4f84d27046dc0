"""The rate section of the settings: the fleet's token bucket, its lanes and fair shares."""

from __future__ import annotations

from pydantic import Field, field_validator

from htap_sync.common.settings_sections import Section

_WEIGHT = r"[A-Za-z0-9_.:-]{1,64}=[0-9]+(\.[0-9]+)?"


class RateSettings(Section):
    """The fleet-wide token bucket in front of the API."""

    limit_per_s: float = Field(
        default=10.0,
        gt=0,
        description="Create calls per second for the whole fleet (all workers, all hosts),"
        " per endpoint and project. The list call has a bucket of its own at the same rate.",
    )
    burst: int = Field(
        default=10, ge=1, description="Calls the bucket lets through at once after a pause."
    )
    bulk_min_share: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="The share of the rate the bulk lane keeps while interactive requests"
        " want all of it (0: interactive requests may starve bulk work).",
    )
    tenant_weights: str = Field(
        default="",
        pattern=rf"^({_WEIGHT}(,{_WEIGHT})*)?$",
        description="Weights of the bulk lane's fair shares, e.g. team_a=2,team_b=1 (a tenant"
        " not named weighs 1).",
    )

    @field_validator("tenant_weights")
    @classmethod
    def _positive_weights(cls, value: str) -> str:
        if any(float(part.partition("=")[2]) <= 0 for part in filter(None, value.split(","))):
            raise ValueError("each tenant's weight must be above 0")
        return value
