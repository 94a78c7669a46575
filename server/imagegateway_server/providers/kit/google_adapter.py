"""The adapter shared by Google's two image APIs (Vertex AI and the Gemini API): Imagen and Gemini models.

A model is either an Imagen model, called once with ``:predict`` for up to four images
(``google_imagen``), or a Gemini image model, called with ``:generateContent`` once per image, the
calls made concurrently (``gemini_content``). Before any call the request is translated by the
model's table (``kit.translation``: the size to the nearest aspect ratio; ``google_sizes``: the
image-size tier) and every parameter the model lacks is refused by name.

A provider subclasses ``GoogleImagesAdapter`` and says which models it serves (``google_model``),
where each call goes (``model_url``), how it authenticates (``authorize``, and ``reauthorize`` for a
401 that a fresh token may cure: tried once) and whether its Gemini bodies take Vertex's extra
image options (``vertex``). Failures are Google's envelope, classified once (``google_errors``).

An Imagen answer with fewer images than asked (its safety filter dropped some) keeps the images it
got and says so: ``n=4->3`` among the result's translations (logged per attempt and sent to the
caller), and a process-log line.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.providers.kit.errors import Secrets, refuse_parameter
from imagegateway_server.providers.kit.fan_out import all_or_nothing
from imagegateway_server.providers.kit.gemini_content import GEMINI_RATIOS, content_bodies, read_content_image
from imagegateway_server.providers.kit.google_errors import classify_google_error
from imagegateway_server.providers.kit.google_imagen import (
    IMAGEN_RATIOS,
    MAX_SAMPLES,
    ImagenModel,
    predict_body,
    read_predictions,
)
from imagegateway_server.providers.kit.google_sizes import choose_tier
from imagegateway_server.providers.kit.headers import request_headers
from imagegateway_server.providers.kit.http_adapter import GENERATE_ONLY, HttpAdapterBase
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.model_spec import ModelSpec, qualities
from imagegateway_server.providers.kit.network_failures import upstream_errors
from imagegateway_server.providers.kit.translation import Translation
from imagegateway_server.providers.kit.transport import UpstreamResponse

log = logging.getLogger(__name__)

PREDICT = "predict"
GENERATE_CONTENT = "generateContent"
# Gemini image models make one image per call; the gateway's own cap on n bounds the fan-out.
GEMINI_MAX_N = 10

_IMAGEN_SPEC = ModelSpec(IMAGEN_RATIOS, qualities(auto=None), max_n=MAX_SAMPLES)
_GEMINI_SPEC = ModelSpec(GEMINI_RATIOS, qualities(auto=None), one_per_call=True, max_n=GEMINI_MAX_N)


@dataclasses.dataclass(frozen=True, slots=True)
class GoogleImageModel:
    """One model a Google API serves: Imagen (``imagen`` set) or Gemini, and its image-size tiers."""

    image_sizes: tuple[str, ...] = ()
    imagen: ImagenModel | None = None

    @property
    def spec(self) -> ModelSpec:
        """The table ``kit.translation`` reads: aspect ratios, no quality but ``auto``, no style."""
        return _IMAGEN_SPEC if self.imagen is not None else _GEMINI_SPEC

    @property
    def method(self) -> str:
        return PREDICT if self.imagen is not None else GENERATE_CONTENT


@dataclasses.dataclass(frozen=True, slots=True)
class Authorization:
    """The headers that carry a credential, and the secrets they hold or came from (scrubbed from every
    message); ``token`` is the one a 401 refused, for ``reauthorize``."""

    headers: Mapping[str, str]
    token: str = dataclasses.field(default="", repr=False)
    secrets: tuple[str, ...] = dataclasses.field(default=(), repr=False)


class GoogleImagesAdapter(HttpAdapterBase):
    """Generates images with Imagen or Gemini on a Google API; subclasses say where and how to authenticate."""

    vertex: bool = False
    models: Mapping[str, GoogleImageModel] = MappingProxyType({})

    def google_model(self, model: str) -> GoogleImageModel | None:
        """The table of a model this API serves; None for any other name (refused)."""
        return self.models.get(model.strip().lower())

    def model_spec(self, model: str) -> ModelSpec | None:
        table = self.google_model(model)
        return table.spec if table is not None else None

    def operations(self, model: str) -> frozenset[Operation]:
        # Gemini edits: the input images go inline in :generateContent. Imagen here only generates.
        table = self.google_model(model)
        if table is not None and table.imagen is None:
            return frozenset({Operation.GENERATE, Operation.EDIT})
        return GENERATE_ONLY

    def model_url(self, target: UpstreamTarget, model: str, method: str) -> str:
        """The URL of ``method`` (``predict`` or ``generateContent``) on ``model`` for ``target``."""
        raise NotImplementedError

    async def authorize(self, target: UpstreamTarget) -> Authorization:
        """The credential's headers."""
        raise NotImplementedError

    async def reauthorize(self, target: UpstreamTarget, rejected: Authorization) -> Authorization | None:
        """Fresh headers after the API refused ``rejected`` with a 401; None when nothing fresher exists."""
        return None

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        plan = self.translation(request, target, self.model_spec)
        model = self.google_model(plan.model)
        if model is None:
            known = ", ".join(sorted(self.models))
            raise refuse_parameter(
                self.name, "model", f"{plan.model!r} is not an image model it serves (known: {known})"
            )
        tier = choose_tier(
            dataclasses.replace(request, model=plan.model), model.image_sizes, provider=self.name, strict=target.strict
        )
        if tier.note is not None:
            plan = dataclasses.replace(plan, notes=(*plan.notes, tier.note))
        translated = dataclasses.replace(
            plan.request, extra={k: v for k, v in plan.request.extra.items() if k != "image_size"}
        )
        url = self.model_url(target, plan.model, model.method)
        if request.operation not in self.operations(plan.model):
            noun = request.operation.noun
            raise refuse_parameter(self.name, "model", f"{plan.model!r} cannot make {noun}", "unsupported_operation")
        if model.imagen is not None:
            body = predict_body(translated, model.imagen, tier.tier, provider=self.name, model_name=plan.model)
            return await self._imagen(url, body, translated.n, plan, target)
        bodies = content_bodies(translated, tier.tier, provider=self.name, model_name=plan.model, vertex=self.vertex)
        images = await all_or_nothing([self._one_content(url, body, target) for body in bodies])
        return plan.finish(ImageResult(images=tuple(images), model=plan.model, created=int(time.time())))

    async def _imagen(
        self, url: str, body: dict[str, Any], asked: int, plan: Translation, target: UpstreamTarget
    ) -> ImageResult:
        response, secret = await self._post(url, body, target)
        got = read_predictions(response, provider=self.name, asked=asked, secret=secret)
        result = plan.finish(ImageResult(images=got.images, model=plan.model, created=int(time.time())))
        if not got.filtered:
            return result
        log.info(
            "the safety filter dropped images; serving the rest",
            extra={"provider": self.name, "model": plan.model, "asked": asked, "served": len(got.images)},
        )
        return dataclasses.replace(result, translations=(*result.translations, f"n={asked}->{len(got.images)}"))

    async def _one_content(self, url: str, body: dict[str, Any], target: UpstreamTarget) -> GeneratedImage:
        response, secret = await self._post(url, body, target)
        return read_content_image(response, provider=self.name, secret=secret)

    async def _post(self, url: str, body: dict[str, Any], target: UpstreamTarget) -> tuple[UpstreamResponse, Secrets]:
        """Sends one call (again once, with fresh credentials, after a 401 they may cure); a non-2xx
        answer is raised classified. Returns the answer and the secrets to scrub from what it says."""
        secret: tuple[str, ...] = target.credential.secret_values()
        async with upstream_errors(self.name, secret=secret, attempt_seconds=target.timeout):
            authorization = await self.authorize(target)
            secret = (*secret, authorization.token, *authorization.secrets)
            response = await self._send(url, body, target, authorization)
            if response.status_code == 401:
                fresh = await self.reauthorize(target, authorization)
                if fresh is not None:
                    secret = (*secret, fresh.token, *fresh.secrets)
                    response = await self._send(url, body, target, fresh)
            if not 200 <= response.status_code < 300:
                raise classify_google_error(self.name, response, secret=secret)
            return response, secret

    async def _send(
        self, url: str, body: dict[str, Any], target: UpstreamTarget, authorization: Authorization
    ) -> UpstreamResponse:
        headers = request_headers(self.name, target.headers, {**authorization.headers, "Accept": "application/json"})
        return await self.send(
            "POST",
            url,
            target,
            json_body=body,
            headers=headers,
        )
