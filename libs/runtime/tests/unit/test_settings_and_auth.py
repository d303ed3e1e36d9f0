import ssl

import pytest
from pydantic import SecretStr, ValidationError

from meadow_runtime.auth import issue_token, verify_token
from meadow_runtime.db import asyncpg_url
from meadow_runtime.errors import Problem
from meadow_runtime.kafka import create_producer
from meadow_runtime.settings import Settings


def test_production_refuses_the_development_jwt_secret() -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(environment="prod")
    Settings(environment="prod", jwt_secret=SecretStr("a-real-secret-from-the-cluster-of-32-bytes"))


def test_asymmetric_algorithms_need_a_public_key() -> None:
    with pytest.raises(ValidationError, match="JWT_PUBLIC_KEY"):
        Settings(jwt_algorithm="RS256")


def test_database_urls_from_operators_are_accepted() -> None:
    assert asyncpg_url("postgresql://u:p@h:5432/d") == "postgresql+asyncpg://u:p@h:5432/d"
    assert asyncpg_url("postgres://u@h/d") == "postgresql+asyncpg://u@h/d"
    with pytest.raises(ValueError, match="mysql"):
        asyncpg_url("mysql://u@h/d")


async def test_tls_listeners_get_an_ssl_context() -> None:
    producer = create_producer(
        Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512")
    )
    assert isinstance(producer.client._ssl_context, ssl.SSLContext)


def test_a_token_round_trips_and_customers_see_only_themselves() -> None:
    settings = Settings()
    token = issue_token(settings, merchant_id="m1", subject="c1", role="customer", customer_id="c1")
    principal = verify_token(settings, token)
    assert (principal.merchant_id, principal.customer_id, principal.is_staff) == ("m1", "c1", False)
    principal.require_customer_access("c1")
    with pytest.raises(Problem) as refused:
        principal.require_customer_access("c2")
    assert refused.value.status == 403


def test_roles_are_ranked() -> None:
    settings = Settings()
    support = verify_token(settings, issue_token(settings, merchant_id="m1", subject="s", role="support"))
    support.require_role("support")
    with pytest.raises(Problem):
        support.require_role("owner")


def test_expired_and_customer_tokens_without_customer_id_are_refused() -> None:
    settings = Settings()
    expired = issue_token(settings, merchant_id="m1", subject="o", role="owner", ttl_seconds=-10)
    with pytest.raises(Problem, match="expired"):
        verify_token(settings, expired)
    anonymous = issue_token(settings, merchant_id="m1", subject="c", role="customer")
    with pytest.raises(Problem, match="customer_id"):
        verify_token(settings, anonymous)
