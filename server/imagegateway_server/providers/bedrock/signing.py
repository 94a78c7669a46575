"""Authenticating one Bedrock call: SigV4 by botocore's signer for a key pair, or a Bedrock API key as a Bearer.

The signature covers the method, the URL as sent (the model id in the path is percent-encoded once
and botocore encodes it again for the canonical request, as AWS's SDKs do), the signed headers
(``host``, ``content-type``, ``accept``, ``x-amz-date`` and, with temporary credentials,
``x-amz-security-token``) and a SHA-256 of the exact body bytes; so the body is serialised once,
here, and sent as these bytes. Signing service ``bedrock``, region the credential's ``aws_region``.

On the hot path: botocore's ``SigV4Auth`` (and its ``Credentials``) are made once per credential and
reused; what remains per call is one ``AWSRequest`` and botocore's HMAC chain, about 60 us.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from imagegateway_server.domain.credentials import API_KEY, Credential

SIGNING_SERVICE = "bedrock"
AWS_ACCESS_KEY_ID = "aws_access_key_id"
AWS_SECRET_ACCESS_KEY = "aws_secret_access_key"
AWS_SESSION_TOKEN = "aws_session_token"
AWS_REGION = "aws_region"
# Credentials whose signer is kept; the least recently used is dropped past this.
MAX_CACHED_SIGNERS = 1024

# botocore's signer logs the canonical request, which holds the session token, at DEBUG: a process
# run with debug logs would write it out. Nothing of the signer is worth that.
logging.getLogger("botocore.auth").setLevel(logging.INFO)

JSON = "application/json"


class BedrockAuth:
    """Makes the authentication headers of Bedrock calls, reusing one botocore signer per credential."""

    def __init__(self, max_signers: int = MAX_CACHED_SIGNERS) -> None:
        self._signers: OrderedDict[Credential, SigV4Auth] = OrderedDict()
        self._max_signers = max_signers

    def headers(self, credential: Credential, url: str, body: bytes) -> dict[str, str]:
        """Every header the call needs besides the forwarded ones: content type, accept and auth."""
        api_key = credential.value(API_KEY)
        if api_key:
            return {"Content-Type": JSON, "Accept": JSON, "Authorization": f"Bearer {api_key}"}
        request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": JSON, "Accept": JSON})
        self._signer(credential).add_auth(request)
        return dict(request.headers.items())

    def _signer(self, credential: Credential) -> SigV4Auth:
        signer = self._signers.get(credential)
        if signer is not None:
            self._signers.move_to_end(credential)
            return signer
        keys = Credentials(
            credential.value(AWS_ACCESS_KEY_ID) or "",
            credential.value(AWS_SECRET_ACCESS_KEY) or "",
            credential.value(AWS_SESSION_TOKEN) or None,
        )
        signer = SigV4Auth(keys, SIGNING_SERVICE, credential.value(AWS_REGION) or "")
        self._signers[credential] = signer
        if len(self._signers) > self._max_signers:
            self._signers.popitem(last=False)
        return signer
