"""Settings of the content service beyond the runtime's own, read from the environment (no prefix).

`WEBHOOK_ALLOW_HTTP` and `WEBHOOK_ALLOW_PRIVATE_NETWORKS` are escape hatches for development and test
rigs whose receivers listen on plain http at 127.0.0.1; production leaves both off (the default).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .domain.egress import EgressPolicy


class ContentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    webhook_allow_http: bool = Field(default=False, description="accept http:// endpoint URLs")
    webhook_allow_private_networks: bool = Field(
        default=False,
        description="deliver to loopback, private, link-local … addresses (never in production)",
    )

    def egress_policy(self) -> EgressPolicy:
        return EgressPolicy(
            allow_http=self.webhook_allow_http, allow_private_networks=self.webhook_allow_private_networks
        )


def egress_policy() -> EgressPolicy:
    """Read where it is needed (microseconds) rather than once at import: the API's registration check and
    the worker's delivery check then always agree with the process environment."""
    return ContentSettings().egress_policy()
