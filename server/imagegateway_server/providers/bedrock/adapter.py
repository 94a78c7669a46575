"""The Bedrock adapter: ``ImageRequest`` → Bedrock Runtime's ``InvokeModel`` for the model's family → ``ImageResult``.

The call is ``POST {base}/model/{modelId}/invoke``, the model id percent-encoded as AWS's SDKs
send it (``amazon.nova-canvas-v1%3A0``), where ``base`` is ``https://bedrock-runtime.{aws_region}.amazonaws.com``,
or the target's ``custom_host`` (Portkey's meaning: it replaces that base), or the operator's base
URL for the provider. The request is translated first (``models``, ``kit.translation``), checked
and mapped to its family's body (``request``), serialised once and signed over those bytes
(``signing``). Nova Canvas and Titan make up to five images in one call; Stability's models make
one, so ``n`` images are ``n`` concurrent calls that all succeed or fail together. Edits and
variations (inpainting and image variation, on Nova Canvas and Titan) are mapped by ``edits``.

A filtered image is never served: the answer's verdict is read by ``response``, and failures are
classified from AWS's error type by ``errors``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable
from typing import Any
from urllib.parse import quote

from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.request import ImageRequest, parse_size
from imagegateway_server.domain.result import ImageResult
from imagegateway_server.providers.bedrock import PROVIDER
from imagegateway_server.providers.bedrock.edits import (
    INPAINTING,
    check_edit,
    edit_body,
    edit_operations,
    prepare_inputs,
)
from imagegateway_server.providers.bedrock.errors import classify_error
from imagegateway_server.providers.bedrock.models import DEFAULT_MODEL, MODELS, BedrockModel, Family, model_spec
from imagegateway_server.providers.bedrock.regions import REGIONS
from imagegateway_server.providers.bedrock.request import amazon_body, check_params, check_values, stability_bodies
from imagegateway_server.providers.bedrock.response import parse_amazon, parse_stability
from imagegateway_server.providers.bedrock.signing import AWS_REGION, BedrockAuth
from imagegateway_server.providers.kit.bodies import DEFAULT_MAX_BODY_BYTES, json_bytes
from imagegateway_server.providers.kit.errors import refuse_parameter
from imagegateway_server.providers.kit.fan_out import all_or_nothing
from imagegateway_server.providers.kit.headers import request_headers
from imagegateway_server.providers.kit.http_adapter import HttpAdapterBase
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.model_aliases import NO_ALIASES, ModelAliases
from imagegateway_server.providers.kit.network_failures import upstream_errors
from imagegateway_server.providers.kit.translation import Translation
from imagegateway_server.providers.kit.transport import UpstreamClient, UpstreamResponse

_REGION_PLACEHOLDER = "{aws_region}"
DEFAULT_BASE_URL = f"https://bedrock-runtime.{_REGION_PLACEHOLDER}.amazonaws.com"


class BedrockAdapter(HttpAdapterBase):
    """Generates images with Amazon Bedrock's image models."""

    name: str = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    default_model_name = DEFAULT_MODEL

    def __init__(
        self,
        *,
        base_url: str | None = None,
        client: UpstreamClient | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        aliases: ModelAliases = NO_ALIASES,
    ) -> None:
        super().__init__(base_url=base_url, client=client, max_body_bytes=max_body_bytes, aliases=aliases)
        self._auth = BedrockAuth()

    def endpoint(self, target: UpstreamTarget, model_id: str) -> str:
        """The InvokeModel URL of ``model_id`` for ``target``."""
        base = (target.base_url or self._base_url).rstrip("/")
        if _REGION_PLACEHOLDER in base:
            region = target.credential.value(AWS_REGION) or ""
            if region not in REGIONS:
                raise refuse_parameter(PROVIDER, AWS_REGION, "is not an AWS region Bedrock Runtime is known in")
            base = base.replace(_REGION_PLACEHOLDER, region)
        return f"{base}/model/{quote(model_id, safe='')}/invoke"

    def operations(self, model: str) -> frozenset[Operation]:
        known = MODELS.get(model)
        if known is None:
            alias = self._aliases.lookup(self.name, model)
            known = MODELS.get(alias.successor) if alias is not None else None
        # An unknown id is refused by ``generate`` naming the model; let the router hand it over.
        return edit_operations(known.family) if known is not None else frozenset(Operation)

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        if request.operation is not Operation.GENERATE:
            return await self._edit(request, target)
        plan = self.translation(request, target, model_spec)
        request, model_id = plan.request, plan.model
        model = _known_model(model_id)
        check_params(request, model_id, model)
        url = self.endpoint(target, model_id)
        secret = target.credential.secret_values()
        async with upstream_errors(self.name, secret=secret, attempt_seconds=target.timeout):
            if model.family is Family.STABILITY:
                calls: list[Awaitable[UpstreamResponse]] = [
                    self._invoke(url, target, body) for body in stability_bodies(request, model_id, model)
                ]
                answers = await all_or_nothing(calls)
                images = tuple(parse_stability(answer, secret=secret) for answer in answers)
            else:
                body = amazon_body(request, model, model.spec.default_size)
                answers = [await self._invoke(url, target, body)]
                images = parse_amazon(answers[0], asked=request.n, secret=secret)
        ids = [rid for answer in answers if (rid := answer.headers.get("x-amzn-requestid"))]
        return plan.finish(
            ImageResult(
                images=images,
                model=model_id,
                created=int(time.time()),
                provider_request_id=",".join(ids) or None,
            )
        )

    async def _edit(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        """An edit or variation (``edits``): inputs converted off the loop, everything checked before the call."""
        # The model first (its size left out, as an inpainting sends none): its limits shape the task.
        plan = self.translation(dataclasses.replace(request, size=None), target, model_spec)
        model_id = plan.model
        model = _known_model(model_id)
        if request.operation not in edit_operations(model.family):
            raise refuse_parameter(
                PROVIDER, "model", f"{model_id!r} cannot make {request.operation.noun}", "unsupported_operation"
            )
        inputs = await asyncio.to_thread(prepare_inputs, request, model)
        inpainting = inputs.task == INPAINTING
        notes = check_edit(request, inputs.task, model, strict=target.strict)
        if not inpainting:
            plan = self.translation(request, target, model_spec)
        check_values(plan.request, model_id, model)
        first = request.images[0]
        size = None if inpainting else parse_size(plan.request.size or model.spec.default_size)
        sent_size = f"{first.width}x{first.height}" if size is None else f"{size[0]}x{size[1]}"
        plan = Translation(plan.provider, plan.request, (*notes, *plan.notes), plan.fan_out, sent_size)
        body = edit_body(plan.request, inputs, size)
        url = self.endpoint(target, model_id)
        secret = target.credential.secret_values()
        async with upstream_errors(self.name, secret=secret, attempt_seconds=target.timeout):
            answer = await self._invoke(url, target, body)
            images = parse_amazon(answer, asked=request.n, secret=secret)
        return plan.finish(
            ImageResult(
                images=images,
                model=model_id,
                created=int(time.time()),
                provider_request_id=answer.headers.get("x-amzn-requestid"),
            )
        )

    async def _invoke(self, url: str, target: UpstreamTarget, body: dict[str, Any]) -> UpstreamResponse:
        content = json_bytes(body)
        own = self._auth.headers(target.credential, url, content)
        response = await self.send(
            "POST",
            url,
            target,
            headers=request_headers(self.name, target.headers, own),
            content=content,
            url_encoded=True,
        )
        if not 200 <= response.status_code < 300:
            raise classify_error(response, secret=target.credential.secret_values())
        return response


def _known_model(model_id: str) -> BedrockModel:
    model = MODELS.get(model_id)
    if model is None:
        known = ", ".join(sorted(MODELS))
        raise refuse_parameter(PROVIDER, "model", f"{model_id!r} is not a Bedrock image model (known: {known})")
    return model
