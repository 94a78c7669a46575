"""The HTTP calls of one asynchronous job attempt: submit, follow the answer's URLs, fetch the result file.

Asynchronous providers (Black Forest Labs, fal) submit a job and then follow URLs their answers
point to. ``JobCalls`` holds what the calls of one attempt share: the client and body cap, the
headers with the key, the submit URL, the attempt's deadline (every call gets only the time left),
the secrets to scrub, and the provider's own error classifier and job hosts. Each provider keeps
its own reading of the submit's fields and of the poll answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from imagegateway_server.domain.errors import ProviderError
from imagegateway_server.domain.result import GeneratedImage
from imagegateway_server.providers.kit.bodies import describe_bad_body, json_object
from imagegateway_server.providers.kit.errors import Secrets, upstream_bug
from imagegateway_server.providers.kit.http_adapter import HttpAdapterBase
from imagegateway_server.providers.kit.images import check_image
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.job_urls import JobHosts
from imagegateway_server.providers.kit.network_failures import upstream_errors
from imagegateway_server.providers.kit.polling import remaining
from imagegateway_server.providers.kit.result_files import fetch_result_file
from imagegateway_server.providers.kit.transport import UpstreamResponse


class Classify(Protocol):
    """A provider's classification of a non-2xx answer (its ``errors.classify_error``)."""

    def __call__(self, response: UpstreamResponse, *, secret: Secrets) -> ProviderError: ...


class JobCalls:
    """What the calls of one attempt share: where they go, how they authenticate, their deadline."""

    def __init__(
        self,
        adapter: HttpAdapterBase,
        target: UpstreamTarget,
        *,
        headers: Mapping[str, str],
        submit_url: str,
        deadline: float,
        wants_url: bool,
        hosts: JobHosts,
        classify: Classify,
    ) -> None:
        self.provider = adapter.name
        self.client = adapter._client
        self.max_body_bytes = adapter._max_body_bytes
        self.target = target
        self.secret: Secrets = target.credential.secret_values()
        self.headers = headers
        self.submit_url = submit_url
        self.deadline = deadline
        self.wants_url = wants_url
        self.hosts = hosts
        self.classify = classify

    async def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        """POSTs ``body`` to the submit URL; the answer's JSON object, or its classified error."""
        response = await self.send("POST", self.submit_url, json_body=body)
        self.raise_unless_ok(response)
        payload = json_object(response.body)
        if payload is None:
            what = describe_bad_body(response.body)
            raise upstream_bug(
                self.provider,
                f"{self.provider}: submit returned HTTP {response.status_code} with {what}",
                secret=self.secret,
            )
        return payload

    def raise_unless_ok(self, response: UpstreamResponse) -> None:
        """Raises the classified error of a non-2xx answer."""
        if not 200 <= response.status_code < 300:
            raise self.classify(response, secret=self.secret)

    def checked_url(self, url: object, role: str, *, sends_key: bool) -> str:
        """``url`` from the field ``role`` of an answer, when it points to the provider's own hosts."""
        return self.hosts.check(url, role=role, sends_key=sends_key, submitted_to=self.submit_url, client=self.client)

    async def fetch_image(self, url: str, seed: int | None) -> GeneratedImage:
        """The result file at ``url`` (checked), fetched without the key within the time left, as an image."""
        data = await fetch_result_file(
            self.client,
            url,
            provider=self.provider,
            seconds=remaining(self.deadline),
            max_body_bytes=self.max_body_bytes,
            secret=self.secret,
        )
        return self.image(data, seed)

    def image(self, data: bytes, seed: int | None) -> GeneratedImage:
        """``data`` checked to be an image the provider made."""
        mime, width, height = check_image(data, provider=self.provider, secret=self.secret)
        return GeneratedImage(data=data, mime_type=mime, width=width, height=height, seed=seed)

    async def send(self, method: str, url: str, **kwargs: Any) -> UpstreamResponse:
        """One call with the key, within the attempt's time left; network failures classified."""
        seconds = remaining(self.deadline)
        async with upstream_errors(self.provider, secret=self.secret, attempt_seconds=seconds):
            return await self.client.send(
                method,
                url,
                provider=self.provider,
                attempt_seconds=seconds,
                max_body_bytes=self.max_body_bytes,
                headers=self.headers,
                **kwargs,
            )
