"""Fetching a finished job's result file: a URL the provider handed back, fetched at once, without the key.

Asynchronous providers answer with the image's URL, often signed for minutes (BFL: about ten), so
the file is fetched as soon as the job is done, within the attempt's remaining time. No credential
header travels: the URL is pre-signed or public, and the provider's key must never reach a storage
or CDN host. A file that is gone (expired signature 403, 404, 410) or another failure is
UNAVAILABLE (502, ``result_unavailable``): a retry or the next target makes a new job.
"""

from __future__ import annotations

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.kit.errors import Secrets, provider_error
from imagegateway_server.providers.kit.network_failures import upstream_errors
from imagegateway_server.providers.kit.transport import UpstreamClient


async def fetch_result_file(
    client: UpstreamClient, url: str, *, provider: str, seconds: float, max_body_bytes: int, secret: Secrets
) -> bytes:
    """The bytes at ``url`` (checked by the caller's ``JobHosts``), within ``seconds``."""
    async with upstream_errors(provider, secret=secret, attempt_seconds=seconds):
        response = await client.send(
            "GET", url, provider=provider, attempt_seconds=seconds, max_body_bytes=max_body_bytes
        )
    if response.status_code == 200:
        return response.body
    gone = response.status_code in (403, 404, 410)
    raise result_unavailable(
        provider,
        f"{provider}: fetching the result file failed with HTTP {response.status_code}"
        + (" (its signed URL expired or it was deleted)" if gone else ""),
        secret=secret,
    )


def result_unavailable(provider: str, message: str, *, secret: Secrets) -> ProviderError:
    """UNAVAILABLE (502, ``result_unavailable``): the job finished but its result could not be had."""
    return provider_error(
        provider, ErrorKind.UNAVAILABLE, message, secret=secret, status_code=502, code="result_unavailable"
    )
