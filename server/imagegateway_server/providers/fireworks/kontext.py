"""FLUX Kontext on Fireworks: submit a task, poll ``get_result`` within the attempt's deadline, fetch the image.

    submit  POST {base}/workflows/accounts/fireworks/models/{model}             -> {"request_id"}
    poll    POST {base}/workflows/accounts/fireworks/models/{model}/get_result  {"id"}
            -> {"id", "status", "result": {"sample": "<signed URL>"} | null}

The statuses are Black Forest Labs' (Fireworks serves BFL's Kontext): ``Ready`` ends with the image;
``Content Moderated`` / ``Request Moderated`` are CONTENT_POLICY (a fallback chain moves on);
``Error`` / ``Failed`` are UNAVAILABLE; ``Task not found`` is UPSTREAM_BUG; anything else
(``Pending``, ``Queued``, ...) means poll again. The first poll waits ``FIRST_POLL_SECONDS``, each
next one ``BACKOFF`` times longer, at most ``MAX_POLL_SECONDS``; the caller bounds the whole task
(the adapter runs it inside ``upstream_errors``, so the attempt's ``request_timeout`` or the
caller's deadline ends it, and cancelling it stops the polling). A poll answered 429 or 5xx is
tried again: the task keeps running upstream.

The sample is fetched at once into bytes, without the API key, and only over https from Fireworks'
or Black Forest Labs' delivery hosts (``DELIVERY_HOST_SUFFIXES``) or from the host the target
itself points at (a proxy, or a test double); any other URL is refused unfetched, so a poll answer
cannot send the gateway anywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.result import GeneratedImage
from imagegateway_server.providers.fireworks import PROVIDER
from imagegateway_server.providers.fireworks.errors import classify_error
from imagegateway_server.providers.kit.bodies import describe_bad_body, json_object
from imagegateway_server.providers.kit.errors import Secrets, provider_error, upstream_bug
from imagegateway_server.providers.kit.images import check_image
from imagegateway_server.providers.kit.transport import UpstreamClient, UpstreamResponse

FIRST_POLL_SECONDS = 0.5
BACKOFF = 1.5
MAX_POLL_SECONDS = 2.0
# Where Kontext results are delivered: Fireworks' own hosts and BFL's delivery hosts (delivery-*.bfl.ai).
DELIVERY_HOST_SUFFIXES = (".fireworks.ai", ".bfl.ai")
_MODERATED = frozenset({"Content Moderated", "Request Moderated"})
_FAILED = frozenset({"Error", "Failed"})
_RETRIED_POLL_STATUSES = frozenset({429, 500, 502, 503, 504})


class KontextTask:
    """One Kontext image: submitted, polled and fetched through ``client`` against the model's ``url``."""

    def __init__(
        self,
        client: UpstreamClient,
        url: str,
        *,
        headers: Mapping[str, str],
        secret: Secrets,
        attempt_seconds: float | None,
        max_body_bytes: int,
    ) -> None:
        self._client = client
        self._url = url
        self._headers = headers
        self._secret = secret
        self._attempt_seconds = attempt_seconds
        self._max_body_bytes = max_body_bytes

    async def run(self, body: dict[str, Any]) -> tuple[GeneratedImage, str | None]:
        """The image the task made, and the task's id."""
        submitted = await self._post(self._url, body)
        if not 200 <= submitted.status_code < 300:
            raise classify_error(submitted, secret=self._secret)
        task_id = self._json(submitted).get("request_id")
        if not isinstance(task_id, str) or not task_id:
            raise self._bug("the task submission answered without a request_id")
        sample = await self._poll(task_id)
        return await self._fetch(sample), task_id

    async def _poll(self, task_id: str) -> str:
        wait = FIRST_POLL_SECONDS
        while True:
            await asyncio.sleep(wait)
            wait = min(wait * BACKOFF, MAX_POLL_SECONDS)
            answer = await self._post(f"{self._url}/get_result", {"id": task_id})
            if answer.status_code in _RETRIED_POLL_STATUSES:
                continue
            if not 200 <= answer.status_code < 300:
                raise classify_error(answer, secret=self._secret)
            payload = self._json(answer)
            status = payload.get("status")
            if status == "Ready":
                result = payload.get("result")
                sample = result.get("sample") if isinstance(result, dict) else None
                if not isinstance(sample, str) or not sample:
                    raise self._bug("the task is Ready without result.sample")
                return sample
            if status in _MODERATED:
                raise provider_error(
                    PROVIDER,
                    ErrorKind.CONTENT_POLICY,
                    f"{PROVIDER}: the FLUX Kontext task ended {status}",
                    secret=self._secret,
                    status_code=400,
                    code="content_policy_violation",
                )
            if status in _FAILED:
                raise provider_error(
                    PROVIDER,
                    ErrorKind.UNAVAILABLE,
                    f"{PROVIDER}: the FLUX Kontext task ended {status}",
                    secret=self._secret,
                    status_code=502,
                    code="generation_failed",
                )
            if status == "Task not found" or not isinstance(status, str):
                raise self._bug(f"the task poll answered status {status!r}")

    async def _fetch(self, sample: str) -> GeneratedImage:
        if not self._may_fetch(sample):
            raise self._bug(
                "the task's result URL is not on a Fireworks or Black Forest Labs delivery host; not fetched"
            )
        # No headers: the URL is signed, and the key must not leave for a delivery host.
        response = await self._client.send(
            "GET", sample, provider=PROVIDER, attempt_seconds=self._attempt_seconds, max_body_bytes=self._max_body_bytes
        )
        if response.status_code != 200:
            raise self._bug(f"fetching the task's image failed with HTTP {response.status_code} (an expired URL?)")
        mime, width, height = check_image(response.body, provider=PROVIDER, secret=self._secret)
        return GeneratedImage(data=response.body, mime_type=mime, width=width, height=height)

    def _may_fetch(self, sample: str) -> bool:
        try:
            parts, own = urlsplit(sample), urlsplit(self._url)
        except ValueError:
            return False
        host = (parts.hostname or "").lower()
        if host and parts.scheme == own.scheme and parts.netloc.lower() == own.netloc.lower():
            return True  # the host the target points at (a proxy or test double): as trusted as the calls themselves
        return parts.scheme == "https" and host.endswith(DELIVERY_HOST_SUFFIXES)

    async def _post(self, url: str, body: dict[str, Any]) -> UpstreamResponse:
        return await self._client.send(
            "POST",
            url,
            provider=PROVIDER,
            attempt_seconds=self._attempt_seconds,
            max_body_bytes=self._max_body_bytes,
            json_body=body,
            headers=self._headers,
        )

    def _json(self, response: UpstreamResponse) -> dict[str, Any]:
        payload = json_object(response.body)
        if payload is None:
            raise self._bug(f"upstream returned HTTP {response.status_code} with {describe_bad_body(response.body)}")
        return payload

    def _bug(self, what: str) -> ProviderError:
        return upstream_bug(PROVIDER, f"{PROVIDER}: {what}", secret=self._secret)
