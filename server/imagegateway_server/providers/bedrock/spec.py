"""Amazon Bedrock as the registry sees it: its name, regional hosts, base URL, prices, models and credential.

The credential is an AWS key pair (``aws_access_key_id`` and ``aws_secret_access_key``, with
``aws_session_token`` for temporary credentials), signed with SigV4, or a Bedrock API key
(``api_key``, sent as a Bearer); exactly one of the two, and ``aws_region`` always (the host is
regional). The access key id and the region are not secrets (AWS shows the key id in every
signed request's Authorization header and in CloudTrail); the secret key, the session token and the
API key are sealed and never shown.
"""

from __future__ import annotations

import re
from pathlib import Path

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.providers.bedrock import PROVIDER
from imagegateway_server.providers.bedrock.adapter import DEFAULT_BASE_URL, BedrockAdapter
from imagegateway_server.providers.bedrock.models import model_spec
from imagegateway_server.providers.bedrock.regions import PUBLIC_HOSTS, REGION_SHAPE
from imagegateway_server.providers.bedrock.signing import (
    AWS_ACCESS_KEY_ID,
    AWS_REGION,
    AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN,
)
from imagegateway_server.providers.kit.spec import CredentialField, CredentialSchema, ProviderSpec

# AWS access key ids: AKIA... (long-term) or ASIA... (temporary), upper-case letters and digits.
ACCESS_KEY_ID_SHAPE = re.compile(r"[A-Z0-9]{16,128}")

SPEC = ProviderSpec(
    name=PROVIDER,
    aliases=frozenset(),  # Portkey knows it only as "bedrock"
    public_hosts=PUBLIC_HOSTS,  # bedrock-runtime.{region}.amazonaws.com for every known region
    default_base_url=DEFAULT_BASE_URL,
    make_adapter=BedrockAdapter,
    credentials=CredentialSchema(
        (
            CredentialField(API_KEY, secret=True, required=False),
            CredentialField(
                AWS_ACCESS_KEY_ID,
                secret=False,
                required=False,
                shape=ACCESS_KEY_ID_SHAPE,
                shape_hint="an AWS access key id (AKIA... or ASIA..., upper-case letters and digits)",
            ),
            CredentialField(AWS_SECRET_ACCESS_KEY, secret=True, required=False),
            CredentialField(AWS_SESSION_TOKEN, secret=True, required=False),
            CredentialField(
                AWS_REGION,
                secret=False,
                required=True,
                shape=REGION_SHAPE,
                shape_hint="an AWS region such as us-east-1",
            ),
        ),
        exactly_one_of=((API_KEY, AWS_SECRET_ACCESS_KEY),),
        requires=(
            (AWS_SECRET_ACCESS_KEY, (AWS_ACCESS_KEY_ID,)),
            (AWS_ACCESS_KEY_ID, (AWS_SECRET_ACCESS_KEY,)),
            (AWS_SESSION_TOKEN, (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)),
        ),
    ),
    model_spec=model_spec,
    prices_file=Path(__file__).with_name("prices.json"),
    # Portkey's headers for a bare bedrock request (createHeaders(provider="bedrock", aws_...=...)).
    credential_headers={
        "x-portkey-aws-access-key-id": AWS_ACCESS_KEY_ID,
        "x-portkey-aws-secret-access-key": AWS_SECRET_ACCESS_KEY,
        "x-portkey-aws-session-token": AWS_SESSION_TOKEN,
        "x-portkey-aws-region": AWS_REGION,
    },
)
