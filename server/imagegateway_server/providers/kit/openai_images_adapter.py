"""The adapter of the OpenAI Images API, shared by the providers that speak it: ``ImageRequest`` → ``ImageResult``.

``size``, ``n``, ``quality`` and ``style`` are first translated to the model's own values
(``openai_image_models``, ``translation``): a size to the nearest the model makes, ``n`` fanned out
into single-image calls on dall-e-3, ``hd``/``standard`` to gpt-image's ``high``/``medium``; and a
retired model to its successor when the operator enabled that alias (``model_aliases``).
``openai_images.build_body`` then builds the body, refusing what the model does not take, before
any HTTP call.

A provider subclasses ``OpenAIImagesAdapter`` and says where the call goes (``endpoint``), how it
authenticates (``auth_headers``), how its error answers are classified (``classify_error``) and
which table a model has (``model_spec``); ``BearerImagesAdapter`` already says where and how for
the providers that serve ``{base}/images/generations`` with a bearer API key. When the caller
wants bytes and the upstream answers with a URL, the image is downloaded (without any credential)
into bytes within the same attempt.

A gpt-image request with ``stream`` set (the router sets it only where ``streams`` says yes) is
sent with ``stream: true`` and ``partial_images`` (an edit as fields of its multipart form); each
``*.partial_image`` event is passed on through ``target.events`` the moment it is read, and the
``*.completed`` events are the result. An ``error`` event ends the attempt as a classified failure;
a stream that ends without a completed event is a truncated answer (502).
"""

from __future__ import annotations

import asyncio
import binascii
import dataclasses
import time
from typing import Any
from urllib.parse import urlsplit

import pybase64

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.providers.kit import progress
from imagegateway_server.providers.kit.base64_json import DecodedBase64
from imagegateway_server.providers.kit.bodies import describe_bad_body, json_object
from imagegateway_server.providers.kit.errors import Secrets, refuse_parameter, upstream_bug
from imagegateway_server.providers.kit.fan_out import all_or_nothing
from imagegateway_server.providers.kit.headers import request_headers
from imagegateway_server.providers.kit.http_adapter import HttpAdapterBase
from imagegateway_server.providers.kit.images import check_image, decode_image_b64
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.model_spec import ModelSpec
from imagegateway_server.providers.kit.network_failures import upstream_errors
from imagegateway_server.providers.kit.openai_image_models import ModelFamily, model_family
from imagegateway_server.providers.kit.openai_images import OPERATIONS, build_body, build_form
from imagegateway_server.providers.kit.sse import EventTooLarge, ServerSentEvent, SseDecoder
from imagegateway_server.providers.kit.transport import FilePart, UpstreamResponse, UpstreamStream

# A long b64_json arrives decoded by the parse that checks it (``base64_json``), not decoded twice.
_IMAGE_KEYS = frozenset({"b64_json"})
_DONE_MARKER_MAX_BYTES = 64  # "[DONE]" with whatever whitespace a server puts around it


def _error_answer(payload: dict[str, Any], response: UpstreamStream, raw: bytes) -> UpstreamResponse:
    """A streamed error event as the error answer it stands for, for the provider's classifier: the
    caller's mistake (a moderation refusal, a bad parameter) as 400, anything else as the server's 500."""
    error = payload.get("error", payload)
    kind = error.get("type") if isinstance(error, dict) else None
    caller_side = isinstance(kind, str) and kind in ("invalid_request_error", "image_generation_user_error")
    return UpstreamResponse(400 if caller_side else 500, response.headers, raw)


def _strict_base64(text: str) -> bytes | None:
    """The bytes of ``text`` if it is strict base64 (nothing but the alphabet and its padding), else None."""
    try:
        # pybase64's SIMD decoder, ~10 us per 200 KiB; validate=True is its fast path as well as the strict one.
        return pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _is_done_marker(event: ServerSentEvent) -> bool:
    """Whether ``event`` is the ``[DONE]`` some OpenAI-compatible servers end a stream with (asked
    without copying a partial image's data out of its chunk)."""
    return event.data_end - event.start <= _DONE_MARKER_MAX_BYTES and event.data.strip() == b"[DONE]"


def _echoed(payload: dict[str, object], name: str) -> str | None:
    """A response-level field the gpt-image models answer with, as OpenAI sent it (None if absent)."""
    value = payload.get(name)
    return value if isinstance(value, str) and value else None


class OpenAIImagesAdapter(HttpAdapterBase):
    """Generates images with an OpenAI-style Images API; subclasses say where and how to authenticate."""

    # What an image handed on as the provider's URL is labelled (its bytes are not fetched to sniff).
    url_mime_type = "image/png"

    def model_spec(self, model: str) -> ModelSpec | None:
        """The table of ``model``; None for a model outside the known families (sent as given)."""
        raise NotImplementedError

    def endpoint(self, target: UpstreamTarget) -> str:
        """The URL of the generations call for ``target``."""
        raise NotImplementedError

    def operation_endpoint(self, target: UpstreamTarget, operation: Operation) -> str:
        """The URL of an edit or a variation (``openai_images.PATHS``); a provider that lists them in
        ``operations`` says where they go."""
        raise NotImplementedError

    def family_operations(self, model: str) -> frozenset[Operation]:
        """What OpenAI's API does with ``model`` (``openai_images.OPERATIONS``): dall-e-2 edits and varies,
        gpt-image edits; for the providers that serve OpenAI's models behind OpenAI's paths."""
        return OPERATIONS[model_family(model)]

    def auth_headers(self, target: UpstreamTarget) -> dict[str, str]:
        """The headers that carry ``target``'s credential."""
        raise NotImplementedError

    def classify_error(self, response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
        """The classified error of a non-2xx answer."""
        raise NotImplementedError

    def build_body(self, request: ImageRequest, model: str, target: UpstreamTarget) -> dict[str, Any]:
        """The JSON body of one call (OpenAI's by default); BAD_REQUEST naming a parameter the model won't take."""
        return build_body(request, model, provider=self.name)

    def _check(self, request: ImageRequest, model: str, target: UpstreamTarget) -> dict[str, Any] | None:
        """Refuses what the call cannot send, before any call: the operation, then each parameter.
        A generation's JSON body is returned, for the call to send rather than build a second time."""
        if request.operation not in self.operations(model):
            raise refuse_parameter(
                self.name, "model", f"model {model!r} cannot make {request.operation.noun}", "unsupported_operation"
            )
        if request.operation is Operation.GENERATE:
            return self.build_body(request, model, target)
        build_form(request, model, provider=self.name)
        return None

    def check_item(self, item: dict[str, object], secret: Secrets) -> None:
        """Raises for an item of ``data`` that must not be served (a provider's content filter); no-op by default."""

    def streams(self, model: str) -> bool:
        """The gpt-image models stream partial images (OpenAI's ``stream``/``partial_images``), for
        generations and edits alike (``image_generation.*`` and ``image_edit.*`` events)."""
        return model_family(model) is ModelFamily.GPT_IMAGE

    def bug(self, message: str, secret: Secrets) -> ProviderError:
        """UPSTREAM_BUG 502 for an answer that is not what the API documents."""
        return upstream_bug(self.name, message, secret=secret)

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        plan = self.translation(request, target, self.model_spec)
        request, model = plan.request, plan.model
        if request.stream and not self.streams(model):
            # Translation moved the request to a model that answers in one piece: it is one completed event.
            request = dataclasses.replace(request, stream=False, partial_images=None)
        body = self._check(request, model, target)  # refuse the operation or a parameter before any call
        if request.stream:
            return plan.finish(await self._generate_streamed(request, model, target, body))
        if not plan.fan_out:
            return plan.finish(await self._generate_once(request, model, target, body))
        # dall-e-3 makes one image per call: fan n out in parallel rather than refuse or clamp it.
        single = dataclasses.replace(request, n=1)
        parts = await all_or_nothing([self._generate_once(single, model, target) for _ in range(request.n)])
        ids = [part.provider_request_id for part in parts if part.provider_request_id]
        return plan.finish(
            ImageResult(
                images=tuple(image for part in parts for image in part.images),
                model=model,
                created=min(part.created for part in parts),
                provider_request_id=",".join(ids) or None,
            )
        )

    async def _generate_once(
        self, request: ImageRequest, model: str, target: UpstreamTarget, checked: dict[str, Any] | None = None
    ) -> ImageResult:
        # Generations send JSON (``checked``: the body ``_check`` built for this very request); edits and
        # variations a multipart form with the images as files.
        if request.operation is Operation.GENERATE:
            body: dict[str, Any] | None = checked if checked is not None else self.build_body(request, model, target)
            form: list[tuple[str, str]] | None = None
            files: list[FilePart] = []
        else:
            body = None
            form, files = build_form(request, model, provider=self.name)
        secret = target.credential.secret_values()
        operation = request.operation
        url = self.endpoint(target) if operation is Operation.GENERATE else self.operation_endpoint(target, operation)
        own = {**self.auth_headers(target), "Accept": "application/json"}
        headers = request_headers(self.name, target.headers, own)
        async with upstream_errors(self.name, secret=secret, attempt_seconds=target.timeout):
            response = await self.send(
                "POST",
                url,
                target,
                json_body=body,
                form=form,
                files=files,
                headers=headers,
            )
            if not 200 <= response.status_code < 300:
                raise self.classify_error(response, secret=secret)
            return await self._parse_success(response, request, model, target)

    async def _generate_streamed(
        self, request: ImageRequest, model: str, target: UpstreamTarget, checked: dict[str, Any] | None
    ) -> ImageResult:
        # A streamed generation sends JSON (the body ``_check`` built); a streamed edit the multipart form
        # with ``stream=true``.
        if request.operation is Operation.GENERATE:
            body: dict[str, Any] | None = checked if checked is not None else self.build_body(request, model, target)
            form: list[tuple[str, str]] | None = None
            files: list[FilePart] = []
            url = self.endpoint(target)
        else:
            body = None
            form, files = build_form(request, model, provider=self.name)
            url = self.operation_endpoint(target, request.operation)
        secret = target.credential.secret_values()
        own = {**self.auth_headers(target), "Accept": "text/event-stream"}
        headers = request_headers(self.name, target.headers, own)
        async with (
            upstream_errors(self.name, secret=secret, attempt_seconds=target.timeout),
            self._client.stream(
                "POST",
                url,
                provider=self.name,
                attempt_seconds=target.timeout,
                max_body_bytes=self._max_body_bytes,
                json_body=body,
                form=form,
                files=files,
                headers=headers,
            ) as response,
        ):
            if not 200 <= response.status_code < 300:
                raise self.classify_error(await response.read(), secret=secret)
            if response.content_type != "text/event-stream":
                # A server that ignored ``stream`` and answered in one piece: its images are the completion.
                return await self._parse_success(await response.read(), request, model, target)
            return await self._read_events(response, request, model, target)

    async def _read_events(
        self, response: UpstreamStream, request: ImageRequest, model: str, target: UpstreamTarget
    ) -> ImageResult:
        """Reads the event stream to its end: partial images passed on as they come, completions kept."""
        secret = target.credential.secret_values()
        decoder = SseDecoder(self._max_body_bytes)
        completed: list[dict[str, Any]] = []
        try:
            async for chunk in response.chunks():
                for event in decoder.feed(chunk):
                    if _is_done_marker(event):
                        break
                    self._on_event(event, response, target, completed)
        except EventTooLarge as exc:
            raise self.bug(f"{self.name}: {exc}", secret) from None
        if not completed:
            raise ProviderError(
                ErrorKind.UNAVAILABLE,
                f"{self.name}: the event stream ended before the image was completed (truncated answer)",
                provider=self.name,
                status_code=502,
                code="truncated_response",
            )
        images = [self._completed_image(payload, secret) for payload in completed]
        last = completed[-1]
        usage = last.get("usage")
        created = last.get("created_at")
        return ImageResult(
            images=tuple(images),
            model=model,
            created=created if isinstance(created, int) and not isinstance(created, bool) else int(time.time()),
            provider_request_id=response.headers.get("x-request-id"),
            usage=usage if isinstance(usage, dict) else None,
            background=_echoed(last, "background"),
            output_format=_echoed(last, "output_format"),
            quality=_echoed(last, "quality"),
            size=_echoed(last, "size"),
            safety_identifier=_echoed(last, "safety_identifier"),
        )

    def _on_event(
        self, event: ServerSentEvent, response: UpstreamStream, target: UpstreamTarget, completed: list[dict[str, Any]]
    ) -> None:
        secret = target.credential.secret_values()
        # A partial image's base64 comes back checked and decoded by the parse, and is never built into a
        # 200 KiB ``str`` (~0.1 ms per partial image) that REST would only encode back to bytes.
        payload = json_object(event.source, image_keys=_IMAGE_KEYS, start=event.start, end=event.end)
        if payload is None:
            raise self.bug(f"{self.name}: a streamed event is {describe_bad_body(event.data)}", secret)
        kind = payload.get("type")
        kind = kind if isinstance(kind, str) else event.event
        if event.event == "error" or kind == "error" or "error" in payload:
            raise self.classify_error(_error_answer(payload, response, event.data), secret=secret)
        if kind.endswith(".partial_image"):
            b64 = payload.get("b64_json")
            index = payload.get("partial_image_index")
            valid_b64 = isinstance(b64, DecodedBase64) or (isinstance(b64, str) and b64)
            if not valid_b64 or not isinstance(index, int) or isinstance(index, bool):
                raise self.bug(
                    f"{self.name}: a partial image event without 'b64_json' or 'partial_image_index'", secret
                )
            # Checked as strict base64, as REST splices the text into its own event unchanged (a quote or
            # a line break would break the stream); the check's bytes are what gRPC sends. A long image
            # was checked by the parse, which hands over its bytes and its text.
            text: str | memoryview
            if isinstance(b64, DecodedBase64):
                text, data = b64.text, b64.data
            else:
                assert isinstance(b64, str)
                text, checked = b64, _strict_base64(b64)
                if checked is None:
                    # Base64 with line breaks (or a data: URL) is passed on plainly; anything else is a bug.
                    checked = decode_image_b64(b64, provider=self.name, secret=secret)
                    text = pybase64.b64encode(checked).decode("ascii")
                data = checked
            progress.partial_image(target, index, text, payload, data)
        elif kind.endswith(".completed"):
            self.check_item(payload, secret)
            completed.append(payload)
        # Any other event (a newer kind) carries nothing the caller's answer needs.

    def _completed_image(self, payload: dict[str, Any], secret: Secrets) -> GeneratedImage:
        b64 = payload.get("b64_json")
        if isinstance(b64, DecodedBase64):
            data = b64.data  # checked and decoded by the event's parse
        elif isinstance(b64, str) and b64:
            data = decode_image_b64(b64, provider=self.name, secret=secret)
        else:
            raise self.bug(f"{self.name}: a completed event without 'b64_json'", secret)
        mime, width, height = check_image(data, provider=self.name, secret=secret)
        return GeneratedImage(data=data, mime_type=mime, width=width, height=height)

    async def _parse_success(
        self, response: UpstreamResponse, request: ImageRequest, model: str, target: UpstreamTarget
    ) -> ImageResult:
        secret = target.credential.secret_values()
        status = response.status_code
        payload = json_object(response.body, image_keys=_IMAGE_KEYS)
        if payload is None:
            what = describe_bad_body(response.body)
            raise self.bug(f"{self.name}: upstream returned HTTP {status} with {what}", secret)
        data = payload.get("data")
        if not isinstance(data, list) or not data:
            raise self.bug(f"{self.name}: upstream returned HTTP {status} without images in 'data'", secret)
        wants_url = request.response_format is ResponseFormat.URL
        if len(data) == 1:  # the usual answer: awaited in place, no task and no extra turn of the loop
            images = [await self._image(data[0], wants_url, target)]
        else:  # URLs are downloaded side by side
            images = await asyncio.gather(*(self._image(item, wants_url, target) for item in data))
        created = payload.get("created")
        if not isinstance(created, int) or isinstance(created, bool):
            created = int(time.time())
        usage = payload.get("usage")
        return ImageResult(
            images=tuple(images),
            model=model,
            created=created,
            provider_request_id=response.headers.get("x-request-id"),
            usage=usage if isinstance(usage, dict) else None,
            background=_echoed(payload, "background"),
            output_format=_echoed(payload, "output_format"),
            quality=_echoed(payload, "quality"),
            size=_echoed(payload, "size"),
            safety_identifier=_echoed(payload, "safety_identifier"),
            svg_usage=svg_usage if isinstance(svg_usage := payload.get("svg_usage"), dict) else None,
        )

    async def _image(self, item: object, wants_url: bool, target: UpstreamTarget) -> GeneratedImage:
        secret = target.credential.secret_values()
        if not isinstance(item, dict):
            raise self.bug(f"{self.name}: an item of 'data' is not an object", secret)
        self.check_item(item, secret)
        revised = item.get("revised_prompt")
        revised_prompt = revised if isinstance(revised, str) else None
        b64 = item.get("b64_json")
        url = item.get("url")
        if isinstance(b64, DecodedBase64):
            data = b64.data
        elif b64 is not None:
            data = decode_image_b64(b64, provider=self.name, secret=secret)
        elif isinstance(url, str) and url:
            if wants_url:
                # The bytes are not fetched, so nothing to sniff: labelled as the provider serves them.
                return GeneratedImage(data=None, mime_type=self.url_mime_type, url=url, revised_prompt=revised_prompt)
            data = await self._download(url, target)
        else:
            raise self.bug(f"{self.name}: an item of 'data' has neither 'b64_json' nor 'url'", secret)
        mime, width, height = check_image(data, provider=self.name, secret=secret)
        return GeneratedImage(data=data, mime_type=mime, width=width, height=height, revised_prompt=revised_prompt)

    async def _download(self, url: str, target: UpstreamTarget) -> bytes:
        try:
            scheme = urlsplit(url).scheme
        except ValueError:  # e.g. an unbalanced "[" in the host: the upstream's bug, not ours
            scheme = ""
        if scheme not in ("http", "https"):
            raise self.bug(
                f"{self.name}: upstream returned an image URL that is not http(s)", target.credential.secret_values()
            )
        # No credential header: the URL is pre-signed and the key must not leave for a CDN.
        response = await self.send("GET", url, target)
        if response.status_code != 200:
            raise self.bug(
                f"{self.name}: downloading the generated image failed with HTTP {response.status_code}",
                target.credential.secret_values(),
            )
        return response.body


class BearerImagesAdapter(OpenAIImagesAdapter):
    """An OpenAI-style Images API at ``{base}/images/generations`` with ``Authorization: Bearer <api_key>``."""

    def endpoint(self, target: UpstreamTarget) -> str:
        return f"{(target.base_url or self._base_url).rstrip('/')}/images/generations"

    def auth_headers(self, target: UpstreamTarget) -> dict[str, str]:
        return {"Authorization": f"Bearer {target.credential.value(API_KEY) or ''}"}
