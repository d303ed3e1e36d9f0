"""Settings every Meadow process reads from its environment (12-factor; no prefix, one process = one service).

`DATABASE_URL` and `KAFKA_BOOTSTRAP_SERVERS` point at the servers; anything else has a safe default for
development. Production sets the JWT key and the Kafka credentials from secrets.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "meadow-dev-secret-change-me-in-production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    service_name: str = Field(default="meadow", description="set by the entry point, not the environment")
    environment: Literal["dev", "test", "prod"] = "dev"

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/meadow"
    database_pool_size: int = Field(default=10, ge=1)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = Field(default="", description="isolates test runs sharing one broker")
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1000)
    kafka_heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    kafka_rebalance_timeout_ms: int = Field(default=10_000, ge=500)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_cafile: str | None = Field(default=None, description="CA bundle for SSL/SASL_SSL listeners")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None

    jwt_algorithm: Literal["HS256", "RS256", "ES256"] = "HS256"
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_public_key: str | None = Field(default=None, description="PEM, for RS256/ES256")
    jwt_issuer: str | None = None

    log_level: str = "INFO"
    otel_traces_exporter: Literal["none", "console", "memory"] = "none"

    outbox_retention_hours: int = Field(default=168, ge=1)
    outbox_batch_size: int = Field(
        default=4000, ge=1, description="rows claimed and produced per transaction"
    )
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    consumer_batch_size: int = Field(default=1000, ge=1)
    consumer_concurrency: int = Field(
        default=2,
        ge=1,
        description="consumers of the service's group in one worker process, each owning its own partitions",
    )
    consumer_max_attempts: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        using_dev_secret = self.jwt_secret.get_secret_value() == DEV_JWT_SECRET
        if self.environment == "prod" and self.jwt_algorithm == "HS256" and using_dev_secret:
            raise ValueError("JWT_SECRET must be set in production")
        if self.jwt_algorithm != "HS256" and not self.jwt_public_key:
            raise ValueError(f"JWT_PUBLIC_KEY is required for {self.jwt_algorithm}")
        return self

    def topic(self, logical_name: str) -> str:
        return f"{self.kafka_topic_prefix}{logical_name}"

    def logical_topic(self, physical_name: str) -> str:
        return physical_name.removeprefix(self.kafka_topic_prefix)

    def for_service(self, name: str) -> Settings:
        return self.model_copy(update={"service_name": name})
