"""The fal adapter: ``ImageRequest`` → a request on fal's queue (submit, poll, result, images) → ``ImageResult``.

``POST {base}/{model_id}`` with ``Authorization: Key ...`` queues the request and answers its
``status_url``, ``response_url`` and ``cancel_url``, which are used as given (they drop the model's
subpath). ``status_url`` is polled with backoff until ``COMPLETED`` (``kit.polling``, within the
attempt's deadline, the queue position reported as it goes); ``response_url`` then holds the
model's output or its error (a 422 ``content_policy_violation`` is CONTENT_POLICY). The images are
fetched from fal's media hosts without the key, or handed on as URLs when the caller asked for
``url``. A caller who leaves, or a deadline that passes, cancels the queued request
(``PUT cancel_url``) in the background. Every URL fal's answers point to is checked against its
queue and media hosts (``hosts``) first. FLUX Kontext's endpoints take edits: the images go as
base64 data URLs in ``image_url`` (``image_urls`` on ``.../multi``), a mask is refused.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.providers.fal import PROVIDER
from imagegateway_server.providers.fal.errors import classify_error
from imagegateway_server.providers.fal.hosts import JOB_HOSTS
from imagegateway_server.providers.fal.jobs import ResultImage, read_result, read_status
from imagegateway_server.providers.fal.models import DEFAULT_MODEL, MODELS, fal_model, model_spec
from imagegateway_server.providers.fal.request import check_params, edit_images, model_input
from imagegateway_server.providers.kit.errors import refuse_parameter, unserved_model, upstream_bug
from imagegateway_server.providers.kit.fan_out import all_or_nothing
from imagegateway_server.providers.kit.headers import request_headers
from imagegateway_server.providers.kit.http_adapter import HttpAdapterBase
from imagegateway_server.providers.kit.images import decode_image_b64
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.job_calls import JobCalls
from imagegateway_server.providers.kit.polling import CANCEL_HOOK_SECONDS, Done, Pending, attempt_deadline, poll_job

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://queue.fal.run"
# fal keeps a request's media for about an hour by default.
MEDIA_URL_SECONDS = 3600.0
_GENERATIONS = frozenset({Operation.GENERATE})
_EDITS = frozenset({Operation.GENERATE, Operation.EDIT})


class FalAdapter(HttpAdapterBase):
    """Generates images with models on fal's queue."""

    name: str = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    default_model_name = DEFAULT_MODEL

    def operations(self, model: str) -> frozenset[Operation]:
        alias = self._aliases.lookup(self.name, model)
        found = fal_model(alias.successor if alias is not None else model)
        # Kontext's endpoints edit; a generation reaching one is refused naming the model.
        return _EDITS if found is not None and found.images_field is not None else _GENERATIONS

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        deadline = attempt_deadline(target.timeout)
        plan = self.translation(request, target, model_spec)
        request = plan.request
        model = fal_model(plan.model)
        if model is None:
            raise unserved_model(self.name, plan.model, "fal", MODELS)
        if (request.operation is Operation.EDIT) != (model.images_field is not None):
            raise refuse_parameter(
                self.name, "model", f"{model.id!r} cannot make {request.operation.noun}", "unsupported_operation"
            )
        check_params(request, model)
        body = model_input(request, model)
        if model.images_field is not None:
            body.update(edit_images(request, model))
        own = {"Authorization": f"Key {target.credential.value(API_KEY) or ''}", "Accept": "application/json"}
        queue = _Queue(
            self,
            target,
            headers=request_headers(self.name, target.headers, own),
            submit_url=f"{(target.base_url or self._base_url).rstrip('/')}/{model.id}",
            deadline=deadline,
            wants_url=request.response_format is ResponseFormat.URL,
            hosts=JOB_HOSTS,
            classify=classify_error,
        )
        calls = request.n if plan.fan_out else 1
        results = await all_or_nothing([queue.run(body) for _ in range(calls)])
        return plan.finish(
            ImageResult(
                images=tuple(image for images, _ in results for image in images),
                model=model.id,
                created=int(time.time()),
                provider_request_id=",".join(request_id for _, request_id in results) or None,
            )
        )


class _Queue(JobCalls):
    """The queue requests of one attempt: each queued, polled, its result read and its images fetched."""

    async def run(self, body: dict[str, Any]) -> tuple[list[GeneratedImage], str]:
        """Queues one request, polls it to the end, reads its result and fetches its images."""
        request_id, urls = await self._submit(body)
        status_url, response_url, cancel_url = urls
        await poll_job(
            lambda: self._status(status_url),
            provider=PROVIDER,
            deadline=self.deadline,
            jobs=self.target.jobs,
            events=self.target.events,
            cancel=(lambda: self._cancel(cancel_url)) if cancel_url else None,
        )
        response = await self.send("GET", response_url)
        self.raise_unless_ok(response)
        images = [await self._image(found) for found in read_result(response, secret=self.secret)]
        return images, request_id

    async def _submit(self, body: dict[str, Any]) -> tuple[str, tuple[str, str, str | None]]:
        payload = await self.submit(body)
        request_id = payload.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise upstream_bug(PROVIDER, f"{PROVIDER}: submit answered without a 'request_id'", secret=self.secret)
        status_url = self._api_url(payload.get("status_url"), "status_url")
        response_url = self._api_url(payload.get("response_url"), "response_url")
        cancel = payload.get("cancel_url")
        cancel_url = self._api_url(cancel, "cancel_url") if cancel is not None else None
        return request_id, (status_url, response_url, cancel_url)

    def _api_url(self, url: object, role: str) -> str:
        return self.checked_url(url, role, sends_key=True)

    async def _status(self, status_url: str) -> Pending | Done[None]:
        response = await self.send("GET", status_url)
        if response.status_code not in (200, 202):
            raise classify_error(response, secret=self.secret)
        return read_status(response, secret=self.secret)

    async def _cancel(self, cancel_url: str) -> None:
        # Runs in the background after the attempt ended; failures are logged by the polling kit.
        await self.client.send(
            "PUT",
            cancel_url,
            provider=PROVIDER,
            attempt_seconds=CANCEL_HOOK_SECONDS,
            max_body_bytes=self.max_body_bytes,
            headers=self.headers,
        )

    async def _image(self, found: ResultImage) -> GeneratedImage:
        if isinstance(found.url, str) and found.url.startswith("data:"):
            # sync_mode answers carry the image inline: nothing to fetch.
            return self.image(decode_image_b64(found.url, provider=PROVIDER, secret=self.secret), found.seed)
        url = self.checked_url(found.url, "images[].url", sends_key=False)
        if self.wants_url:
            log.info("handing on a fal media URL; fal keeps it for a limited time", extra={"provider": PROVIDER})
            return GeneratedImage(
                data=None,
                mime_type=found.content_type or "image/jpeg",
                url=url,
                seed=found.seed,
                url_expires_at=time.time() + MEDIA_URL_SECONDS,
            )
        return await self.fetch_image(url, found.seed)
