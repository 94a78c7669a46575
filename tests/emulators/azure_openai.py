"""Fake Azure OpenAI Images API: ``POST /openai/deployments/{id}/images/generations?api-version=...``
(and ``/images/edits``, a multipart form as OpenAI's).

Validates as Azure does: an ``api-key`` header or an ``Authorization: Bearer`` Entra token, the
``api-version`` query parameter (required, one of the versions that serve images), a deployment
that exists (each serves one model, whatever the body's ``model`` says), and OpenAI's body rules
for that model. Answers OpenAI's shape with Azure's per-item ``prompt_filter_results`` and
``content_filter_results``, and errors in Azure's envelope (string ``code``; the content filter's
400 ``content_policy_violation`` with ``inner_error.content_filter_results``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from .emulator import AnswerMode, Endpoint, bearer_token
from .openai_edit_rules import parse_edit
from .openai_images import OpenAIEmulator, generated_image, stream_answer
from .openai_rules import OpenAIError, parse_generation
from .recording import RecordedRequest
from .server import Response

_GENERATIONS = re.compile(r"^/openai/deployments/([^/]+)/images/generations/?$")
_EDITS = re.compile(r"^/openai/deployments/([^/]+)/images/edits/?$")
API_VERSIONS = frozenset({"2024-02-01", "2024-06-01", "2024-10-21", "2025-04-01-preview"})
DEFAULT_DEPLOYMENTS: Mapping[str, str] = {"dalle3": "dall-e-3", "gpt-image": "gpt-image-1"}
_SAFE = {"filtered": False, "severity": "safe"}
_FILTER_RESULTS = {name: _SAFE for name in ("hate", "self_harm", "sexual", "violence")}


class AzureError(OpenAIError):
    """An error answer in Azure's envelope: ``code`` a string, ``inner_error`` for the content filter."""

    def __init__(self, status: int, message: str, code: str, inner_error: dict[str, Any] | None = None) -> None:
        super().__init__(status, message, "invalid_request_error" if inner_error else "", None, code)
        self.inner_error = inner_error

    def envelope(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner_error is not None:
            error.update(type=self.type, inner_error=self.inner_error)
        return {"error": error}


def _error(error: OpenAIError) -> Response:
    body = error.envelope() if isinstance(error, AzureError) else _as_azure(error)
    return Response.json(error.status, body)


def _as_azure(error: OpenAIError) -> dict[str, Any]:
    """An OpenAI body-validation error as Azure relays it: same message, the code as a string."""
    return {"error": {"code": error.code or str(error.status), "message": error.message, "param": error.param}}


class AzureOpenAIEmulator(OpenAIEmulator):
    """Azure OpenAI on ``http://127.0.0.1:PORT/openai``; ``api_key`` and ``ad_token`` are what it accepts."""

    provider: ClassVar[str] = "azure-openai"
    _base_path: ClassVar[str] = "/openai"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        ad_token: str | None = None,
        deployments: Mapping[str, str] = DEFAULT_DEPLOYMENTS,
        host: str = "127.0.0.1",
        port: int = 0,
        max_recorded: int = 1000,
    ) -> None:
        super().__init__(api_key, host=host, port=port, max_recorded=max_recorded)
        self.ad_token = ad_token
        self.deployments = dict(deployments)

    def _new_request_id(self) -> str:
        return super()._new_request_id().removeprefix("req_")

    def _response_headers(self) -> list[tuple[str, str]]:
        return [("apim-request-id", "emulator"), ("x-ms-region", "East US")]

    def _route(self, request: RecordedRequest) -> Endpoint | None:
        if request.method == "POST" and _GENERATIONS.match(request.path):
            return self._generations
        if request.method == "POST" and _EDITS.match(request.path):
            return self._azure_edits
        return None

    def _not_found(self, request: RecordedRequest) -> Response:
        return _error(AzureError(404, "Resource not found", "404"))

    def _error_response(self, status: int, request: RecordedRequest) -> Response:
        if status == 401:
            return _error(_access_denied())
        if status == 404:
            return _error(_deployment_not_found())
        if status == 429:
            return self._rate_limited_response(request)
        if status == 400:
            return _error(_content_policy())
        return _error(AzureError(status, f"The server answered HTTP {status}.", str(status)))

    def _rate_limited_response(self, request: RecordedRequest) -> Response:
        return _error(
            AzureError(
                429,
                "Requests to the ImageGenerations_Create Operation under Azure OpenAI API version "
                f"{request.query.get('api-version', '')} have exceeded call rate limit of your current "
                "pricing tier. Please retry after 1 second.",
                "429",
            )
        ).with_headers([("retry-after-ms", "1000")])

    def _moderation_denied(self, request: RecordedRequest, endpoint: Endpoint) -> Response:
        return _error(_content_policy())

    def _generations(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        try:
            self._authenticate(request)
            version = request.query.get("api-version")
            if not version:
                # Azure answers a request without api-version as an unknown route.
                raise AzureError(404, "Resource not found", "404")
            if version not in API_VERSIONS:
                raise AzureError(400, f"API version not supported: {version}", "BadRequest")
            match = _GENERATIONS.match(request.path)
            assert match is not None
            model = self.deployments.get(match.group(1))
            if model is None:
                raise _deployment_not_found()
            body = request.json
            if body is None:
                raise AzureError(400, "The request body is not valid JSON.", "BadRequest")
            generation = parse_generation(json.dumps({**body, "model": model}).encode())
        except OpenAIError as error:
            return _error(error)
        if mode.content_filtered:
            return _error(_content_policy())
        image = generated_image(generation, mode)
        if generation.stream:
            return stream_answer(generation, image, mode)  # Azure streams gpt-image as OpenAI does
        payload = self._images_response(generation, image)
        for item in payload["data"]:
            item["prompt_filter_results"] = {**_FILTER_RESULTS, "profanity": {"detected": False, "filtered": False}}
            item["content_filter_results"] = dict(_FILTER_RESULTS)
        return Response.json(200, payload)

    def _azure_edits(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        """An edit on a deployment: the form validated as OpenAI's, with the deployment's model."""
        try:
            self._authenticate(request)
            version = request.query.get("api-version")
            if not version:
                raise AzureError(404, "Resource not found", "404")
            if version not in API_VERSIONS:
                raise AzureError(400, f"API version not supported: {version}", "BadRequest")
            match = _EDITS.match(request.path)
            assert match is not None
            model = self.deployments.get(match.group(1))
            if model is None:
                raise _deployment_not_found()
            if request.form is None:
                raise AzureError(400, "The request body must be multipart/form-data.", "BadRequest")
            upload = parse_edit({**request.form, "model": model}, request.file_parts, frozenset())
        except OpenAIError as error:
            return _error(error)
        if mode.content_filtered:
            return _error(_content_policy())
        image = generated_image(upload.generation, mode)
        if upload.generation.stream:
            return stream_answer(upload.generation, image, mode, prefix="image_edit")  # as OpenAI streams edits
        return Response.json(200, self._images_response(upload.generation, image))

    def _authenticate(self, request: RecordedRequest) -> None:
        if self.api_key is None and self.ad_token is None:
            return
        key = request.headers.get("api-key")
        token = bearer_token(request.headers) if "authorization" in request.headers else None
        if (key is not None and key == self.api_key) or (token is not None and token == self.ad_token):
            return
        raise _access_denied()


def _access_denied() -> AzureError:
    return AzureError(
        401,
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
        "for an active subscription and use a correct regional API endpoint for your resource.",
        "401",
    )


def _deployment_not_found() -> AzureError:
    return AzureError(
        404,
        "The API deployment for this resource does not exist. If you created the deployment within the last "
        "5 minutes, please wait a moment and try again.",
        "DeploymentNotFound",
    )


def _content_policy() -> AzureError:
    return AzureError(
        400,
        "Your request was rejected as a result of our safety system. Your prompt may contain text that is not "
        "allowed by our safety system.",
        "content_policy_violation",
        {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_results": {**_FILTER_RESULTS, "violence": {"filtered": True, "severity": "medium"}},
        },
    )
