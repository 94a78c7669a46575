"""The Black Forest Labs adapter: ``ImageRequest`` → FLUX tasks (submit, poll, fetch) → ``ImageResult``.

One image is one task: ``POST {base}/v1/{model}`` with ``x-key`` answers ``{"id", "polling_url"}``;
``GET polling_url`` (with ``x-key``) is polled with backoff until ``Ready`` (``kit.polling``, within
the attempt's deadline); ``result.sample`` is a URL signed for about ten minutes on BFL's delivery
hosts, fetched at once into bytes without the key, or handed on as it is when the caller asked for
``url`` (logged, since it expires). ``n`` images are n tasks at once, all kept or none. An edit on
Kontext or FLUX.2 is the same task with the images as ``input_image``.. (``edits``).

Every URL BFL's answers point to is checked against its API and delivery hosts (``hosts``) before
it is followed. A moderated task is CONTENT_POLICY (``jobs``), which moves a fallback chain on; a
429 on submit (too many active tasks on the key) is RATE_LIMITED (``errors``).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.providers.black_forest_labs import PROVIDER
from imagegateway_server.providers.black_forest_labs.edits import edit_operations, with_input_images
from imagegateway_server.providers.black_forest_labs.errors import classify_error
from imagegateway_server.providers.black_forest_labs.hosts import JOB_HOSTS
from imagegateway_server.providers.black_forest_labs.jobs import read_poll
from imagegateway_server.providers.black_forest_labs.models import DEFAULT_MODEL, MODELS, flux_model, model_spec
from imagegateway_server.providers.black_forest_labs.request import check_params, task_bodies
from imagegateway_server.providers.kit.errors import refuse_parameter, unserved_model, upstream_bug
from imagegateway_server.providers.kit.fan_out import all_or_nothing
from imagegateway_server.providers.kit.headers import request_headers
from imagegateway_server.providers.kit.http_adapter import HttpAdapterBase
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.job_calls import JobCalls
from imagegateway_server.providers.kit.polling import Done, Pending, attempt_deadline, poll_job

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.bfl.ai"
# BFL signs result URLs for about ten minutes; a little less is promised onwards.
RESULT_URL_SECONDS = 540.0
_MIME = {"jpeg": "image/jpeg", "png": "image/png"}


class BlackForestLabsAdapter(HttpAdapterBase):
    """Generates images with Black Forest Labs' asynchronous FLUX API."""

    name: str = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    default_model_name = DEFAULT_MODEL

    def operations(self, model: str) -> frozenset[Operation]:
        alias = self._aliases.lookup(self.name, model)
        return edit_operations(flux_model(alias.successor if alias is not None else model))

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        deadline = attempt_deadline(target.timeout)
        plan = self.translation(request, target, model_spec)
        request = plan.request
        model = flux_model(plan.model)
        if model is None:
            raise unserved_model(self.name, plan.model, "FLUX", MODELS)
        if request.operation is Operation.EDIT:
            request = with_input_images(request, model)
        elif request.operation is not Operation.GENERATE:
            raise refuse_parameter(
                self.name, "model", f"{model.name!r} cannot make {request.operation.noun}", "unsupported_operation"
            )
        check_params(request, model)
        bodies = task_bodies(request, model)
        own = {"x-key": target.credential.value(API_KEY) or "", "Accept": "application/json"}
        task = _Task(
            self,
            target,
            headers=request_headers(self.name, target.headers, own),
            submit_url=f"{(target.base_url or self._base_url).rstrip('/')}/v1/{quote(model.name)}",
            deadline=deadline,
            wants_url=request.response_format is ResponseFormat.URL,
            hosts=JOB_HOSTS,
            classify=classify_error,
        )
        results = await all_or_nothing([task.run(body) for body in bodies])
        return plan.finish(
            ImageResult(
                images=tuple(image for image, _ in results),
                model=model.name,
                created=int(time.time()),
                provider_request_id=",".join(task_id for _, task_id in results if task_id) or None,
            )
        )


class _Task(JobCalls):
    """The tasks of one attempt: each submitted, polled to the end and its image fetched."""

    async def run(self, body: dict[str, Any]) -> tuple[GeneratedImage, str]:
        """Submits one task, polls it to the end and fetches its image (or hands on its URL)."""
        task_id, polling_url = await self._submit(body)
        sample = await poll_job(
            lambda: self._poll(polling_url),
            provider=PROVIDER,
            deadline=self.deadline,
            jobs=self.target.jobs,
            events=self.target.events,
        )
        url = self.checked_url(sample, "result.sample", sends_key=False)
        seed = body.get("seed")
        mime = _MIME.get(str(body.get("output_format", "jpeg")), "image/jpeg")
        if self.wants_url:
            log.info(
                "handing on a signed result URL; it expires in about 10 minutes",
                extra={"provider": PROVIDER, "task_id": task_id},
            )
            expires = time.time() + RESULT_URL_SECONDS
            return GeneratedImage(data=None, mime_type=mime, url=url, seed=seed, url_expires_at=expires), task_id
        return await self.fetch_image(url, seed), task_id

    async def _submit(self, body: dict[str, Any]) -> tuple[str, str]:
        payload = await self.submit(body)
        task_id = payload.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise upstream_bug(PROVIDER, f"{PROVIDER}: submit answered without a task 'id'", secret=self.secret)
        polling_url = payload.get("polling_url")
        if polling_url is None:
            # Older answers carry only the id, polled on the legacy endpoint of the submit host.
            origin = self.submit_url.rsplit("/v1/", 1)[0]
            polling_url = f"{origin}/v1/get_result?id={quote(task_id, safe='')}"
        return task_id, self.checked_url(polling_url, "polling_url", sends_key=True)

    async def _poll(self, polling_url: str) -> Pending | Done[object]:
        response = await self.send("GET", polling_url)
        if response.status_code != 200:
            raise classify_error(response, secret=self.secret)
        return read_poll(response, secret=self.secret)
