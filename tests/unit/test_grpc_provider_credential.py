"""gRPC's ``Routing.provider_credential``: a bare provider's typed credential fields, named in errors by their path."""

from __future__ import annotations

import pytest

from imagegateway.v1 import images_pb2
from imagegateway_server.api.grpc_mapping import routing_spec
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.providers.registry import credential_schema

AWS = {"aws_access_key_id": "AKIAIMAGEGWTEST00001", "aws_secret_access_key": "aws-secret", "aws_region": "us-east-1"}


def parse_error(routing: images_pb2.Routing) -> InvalidArgument:
    spec = routing_spec(routing)
    with pytest.raises(InvalidArgument) as caught:
        credential_schema(spec.provider or "").parse(
            spec.provider_credential,
            provider=spec.provider or "",
            param_prefix="provider_credential",
            param_names=spec.credential_params,
        )
    return caught.value


def test_the_map_carries_a_bare_providers_typed_fields() -> None:
    spec = routing_spec(images_pb2.Routing(provider="bedrock", provider_credential=AWS))
    assert spec.provider_credential == AWS
    credential = credential_schema("bedrock").parse(spec.provider_credential, provider="bedrock")
    assert dict(credential.public_fields()) == {
        "aws_access_key_id": AWS["aws_access_key_id"],
        "aws_region": "us-east-1",
    }


def test_provider_api_key_joins_the_map_as_api_key() -> None:
    routing = images_pb2.Routing(
        provider="bedrock", provider_api_key="k", provider_credential={"aws_region": "us-east-1"}
    )
    assert routing_spec(routing).provider_credential == {"api_key": "k", "aws_region": "us-east-1"}


def test_an_api_key_given_twice_is_refused() -> None:
    routing = images_pb2.Routing(provider="openai", provider_api_key="k", provider_credential={"api_key": "k2"})
    with pytest.raises(InvalidArgument) as caught:
        routing_spec(routing)
    assert caught.value.param == "provider_credential.api_key"


def test_the_map_is_refused_without_a_bare_provider() -> None:
    with pytest.raises(InvalidArgument) as caught:
        routing_spec(images_pb2.Routing(virtual_key="vk-1", provider_credential={"aws_region": "us-east-1"}))
    assert caught.value.param == "provider_credential"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({k: v for k, v in AWS.items() if k != "aws_region"}, "provider_credential.aws_region"),
        ({**AWS, "aws_region": "mars-1"}, "provider_credential.aws_region"),
        ({**AWS, "vertex_project_id": "p"}, "provider_credential.vertex_project_id"),
        ({"aws_region": "us-east-1"}, "provider_api_key"),
    ],
)
def test_errors_name_the_field_under_provider_credential(fields: dict[str, str], param: str) -> None:
    error = parse_error(images_pb2.Routing(provider="bedrock", provider_credential=fields))
    assert error.param == param
    assert "aws-secret" not in error.message
