"""The Fireworks AI adapter: FLUX workflows with ``Authorization: Bearer <api_key>``.

The request is first translated to the model's own values (``models``, ``kit.translation``): a
size to the nearest aspect ratio, a quality to its steps. It is then checked (``request``) and sent
as one call per image, all at once, that succeed or fail together. FLUX.1 [dev] and [schnell] answer
the raw image (``response``); FLUX Kontext answers a task that is polled until it is done and its
image fetched (``kontext``), all within the same attempt's deadline. ``default_model()`` is
flux-1-schnell-fp8, the one Fireworks' examples use.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping
from typing import Any

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.providers.fireworks import PROVIDER
from imagegateway_server.providers.fireworks.errors import classify_error
from imagegateway_server.providers.fireworks.kontext import KontextTask
from imagegateway_server.providers.fireworks.models import DEFAULT_MODEL, is_kontext, model_spec, short_name
from imagegateway_server.providers.fireworks.request import (
    accept_header,
    bodies,
    check_model,
    check_request,
    kontext_bodies,
    kontext_edit_image,
)
from imagegateway_server.providers.fireworks.response import parse_image
from imagegateway_server.providers.kit.errors import refuse_parameter
from imagegateway_server.providers.kit.fan_out import all_or_nothing
from imagegateway_server.providers.kit.headers import request_headers
from imagegateway_server.providers.kit.http_adapter import HttpAdapterBase
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.network_failures import upstream_errors

DEFAULT_BASE_URL = "https://api.fireworks.ai/inference/v1"


_GENERATIONS = frozenset({Operation.GENERATE})
_EDITS = frozenset({Operation.GENERATE, Operation.EDIT})


class FireworksAdapter(HttpAdapterBase):
    """Generates images with Fireworks AI's FLUX workflows."""

    name: str = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    default_model_name = DEFAULT_MODEL

    def operations(self, model: str) -> frozenset[Operation]:
        # Kontext edits (its input_image); the text-to-image workflows only generate.
        return _EDITS if is_kontext(model) else _GENERATIONS

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        model = request.model or DEFAULT_MODEL
        check_model(model)  # an unknown model is refused before translation
        plan = self.translation(request, target, model_spec)
        request, model = plan.request, plan.model
        if request.operation not in self.operations(model):
            raise refuse_parameter(
                self.name, "model", f"{model!r} cannot make {request.operation.noun}", "unsupported_operation"
            )
        check_request(request, model)
        edited = kontext_edit_image(request, model) if request.operation is Operation.EDIT else None
        base = (target.base_url or self._base_url).rstrip("/")
        workflow = f"{base}/workflows/accounts/fireworks/models/{short_name(model)}"
        auth = {"Authorization": f"Bearer {target.credential.value(API_KEY) or ''}"}
        secret = target.credential.secret_values()
        calls: list[Awaitable[tuple[GeneratedImage, str | None]]]
        if is_kontext(model):
            headers = request_headers(self.name, target.headers, {**auth, "Accept": "application/json"})
            task = KontextTask(
                self._client,
                workflow,
                headers=headers,
                secret=secret,
                attempt_seconds=target.timeout,
                max_body_bytes=self._max_body_bytes,
            )
            task_bodies = kontext_bodies(request)
            if edited is not None:
                task_bodies = [{**body, "input_image": edited} for body in task_bodies]
            calls = [task.run(body) for body in task_bodies]
        else:
            headers = request_headers(self.name, target.headers, {**auth, "Accept": accept_header(request)})
            calls = [self._one(f"{workflow}/text_to_image", target, headers, body) for body in bodies(request)]
        async with upstream_errors(self.name, secret=secret, attempt_seconds=target.timeout):
            results = await all_or_nothing(calls)
        ids = [rid for _, rid in results if rid]
        return plan.finish(
            ImageResult(
                images=tuple(image for image, _ in results),
                model=model,
                created=int(time.time()),
                provider_request_id=",".join(ids) or None,
            )
        )

    async def _one(
        self, url: str, target: UpstreamTarget, headers: Mapping[str, str], body: dict[str, Any]
    ) -> tuple[GeneratedImage, str | None]:
        response = await self.send(
            "POST",
            url,
            target,
            json_body=body,
            headers=headers,
        )
        secret = target.credential.secret_values()
        if not 200 <= response.status_code < 300:
            raise classify_error(response, secret=secret)
        return parse_image(response, secret=secret), response.headers.get("x-request-id")
