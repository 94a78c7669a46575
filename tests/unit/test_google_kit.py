"""The provider kit's Google pieces as pure functions: size tiers, the error envelope, bodies and answers."""

from __future__ import annotations

import base64
import json

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from imagegateway_server.domain.credentials import Credential
from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.kit.gemini_content import content_bodies, read_content_image
from imagegateway_server.providers.kit.google_errors import classify_google_error
from imagegateway_server.providers.kit.google_imagen import ImagenModel, predict_body, read_predictions
from imagegateway_server.providers.kit.google_sizes import choose_tier, wanted_tier
from imagegateway_server.providers.kit.transport import UpstreamResponse
from imagegateway_server.state.breakers import TargetIdentity
from tests.emulators.images import solid_image

PNG = base64.b64encode(solid_image(8, 8)).decode()


def answer(status: int, body: object, **headers: str) -> UpstreamResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return UpstreamResponse(status, CIMultiDictProxy(CIMultiDict(headers)), raw)


@pytest.mark.parametrize(
    ("size", "tier"),
    [((1024, 1024), "1K"), ((1792, 1024), "2K"), ((1536, 1024), "2K"), ((2048, 2048), "2K"), ((4096, 2304), "4K")],
)
def test_the_tier_is_the_smallest_with_the_pixels_asked_for(size: tuple[int, int], tier: str) -> None:
    assert wanted_tier(*size) == tier


def test_a_model_without_the_tier_makes_its_largest_and_says_so() -> None:
    request = ImageRequest(prompt="a", model="m", size="4096x4096")
    assert choose_tier(request, ("1K", "2K"), provider="p", strict=False).note == "image_size=4K->2K"
    assert choose_tier(request, (), provider="p", strict=False).tier is None  # 1K only: nothing is sent
    with pytest.raises(ProviderError) as refused:
        choose_tier(request, ("1K", "2K"), provider="p", strict=True)
    assert refused.value.param == "size"
    explicit = ImageRequest(prompt="a", model="m", extra={"image_size": "4k"})
    assert choose_tier(explicit, ("1K", "2K", "4K"), provider="p", strict=False).tier == "4K"
    with pytest.raises(ProviderError) as unknown:
        choose_tier(ImageRequest(prompt="a", extra={"image_size": "8K"}), ("1K",), provider="p", strict=False)
    assert unknown.value.param == "image_size"


@pytest.mark.parametrize(
    ("status", "body", "kind", "code", "http"),
    [
        (
            429,
            {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota"}},
            "RATE_LIMITED",
            "RESOURCE_EXHAUSTED",
            429,
        ),
        (
            400,
            {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "bad"}},
            "BAD_REQUEST",
            "INVALID_ARGUMENT",
            400,
        ),
        (
            400,
            {
                "error": {
                    "code": 400,
                    "status": "INVALID_ARGUMENT",
                    "message": "API key not valid.",
                    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
                }
            },
            "AUTHENTICATION",
            "API_KEY_INVALID",
            401,
        ),
        (
            400,
            {"error": {"status": "INVALID_ARGUMENT", "message": "... violate Google's Responsible AI practices ..."}},
            "CONTENT_POLICY",
            "content_policy_violation",
            400,
        ),
        (504, {"error": {"status": "DEADLINE_EXCEEDED", "message": "slow"}}, "TIMEOUT", "DEADLINE_EXCEEDED", 504),
        (502, b"<html>bad gateway</html>", "UNAVAILABLE", None, 502),
        (418, b"", "BAD_REQUEST", None, 418),
        (302, b"", "UPSTREAM_BUG", "unexpected_status", 502),
    ],
)
def test_the_envelope_is_classified_by_its_status(
    status: int, body: object, kind: str, code: str | None, http: int
) -> None:
    error = classify_google_error("google", answer(status, body, **{"retry-after": "3"}), secret=("k",))
    assert (error.kind, error.code, error.status_code) == (ErrorKind(kind), code, http)
    assert error.kind is not ErrorKind.RATE_LIMITED or error.retry_after == 3


def test_an_imagen_body_refuses_what_the_model_lacks_and_sends_the_rest() -> None:
    request = ImageRequest(prompt="a", n=2, aspect_ratio="9:16", seed=3, output_format="jpeg", output_compression=70)
    body = predict_body(request, ImagenModel(seed=True), None, provider="p", model_name="m")
    assert body["parameters"] == {
        "sampleCount": 2,
        "aspectRatio": "9:16",
        "seed": 3,
        "addWatermark": False,
        "outputOptions": {"mimeType": "image/jpeg", "compressionQuality": 70},
        "includeRaiReason": True,
    }
    for bad, param in (
        (ImageRequest(prompt="a", seed=1), "seed"),
        (ImageRequest(prompt="a", aspect_ratio="2:3"), "aspect_ratio"),
        (ImageRequest(prompt="a", output_compression=5), "output_compression"),
        (ImageRequest(prompt="a").with_overrides({"safety_setting": "block_everything"}), "safety_setting"),
        (ImageRequest(prompt="a", user="u"), "user"),
    ):
        with pytest.raises(ProviderError) as refused:
            predict_body(bad, ImagenModel(), None, provider="p", model_name="m")
        assert refused.value.param == param


def test_predictions_without_images_are_skipped_and_none_at_all_is_content_policy() -> None:
    body = {
        "predictions": [
            {"mimeType": "image/png", "bytesBase64Encoded": PNG, "prompt": "an enhanced prompt"},
            {"raiFilteredReason": "filtered"},
            {"contentType": "Positive Prompt", "safetyAttributes": {"categories": [], "scores": []}},
        ]
    }
    got = read_predictions(answer(200, body), provider="p", asked=2, secret=())
    assert len(got.images) == 1 and got.filtered == 1 and got.images[0].revised_prompt == "an enhanced prompt"
    for empty in ({}, {"predictions": []}, {"predictions": [{"raiFilteredReason": "filtered"}]}):
        with pytest.raises(ProviderError) as refused:
            read_predictions(answer(200, empty), provider="p", asked=1, secret=())
        assert refused.value.kind is ErrorKind.CONTENT_POLICY


def test_a_gemini_candidate_with_a_safety_verdict_is_never_served_even_with_an_image() -> None:
    parts = [{"inlineData": {"mimeType": "image/png", "data": PNG}}]
    served = {"candidates": [{"content": {"parts": [{"text": "hi"}, *parts]}, "finishReason": "STOP"}]}
    assert read_content_image(answer(200, served), provider="p", secret=()).width == 8
    stopped = {"candidates": [{"content": {"parts": parts}, "finishReason": "IMAGE_SAFETY"}]}
    with pytest.raises(ProviderError) as refused:
        read_content_image(answer(200, stopped), provider="p", secret=())
    assert refused.value.kind is ErrorKind.CONTENT_POLICY
    no_image = {"candidates": [{"content": {"parts": [{"text": "I cannot"}]}, "finishReason": "NO_IMAGE"}]}
    with pytest.raises(ProviderError) as bug:
        read_content_image(answer(200, no_image), provider="p", secret=())
    assert bug.value.kind is ErrorKind.UPSTREAM_BUG


def test_gemini_bodies_step_the_seed_and_keep_vertex_options_to_vertex() -> None:
    request = ImageRequest(prompt="a", n=3, seed=2**31 - 1, aspect_ratio="21:9").with_overrides(
        {"person_generation": "allow_none"}
    )
    bodies = content_bodies(request, "4K", provider="p", model_name="m", vertex=True)
    assert [b["generationConfig"]["seed"] for b in bodies] == [2**31 - 1, 0, 1]
    assert bodies[0]["generationConfig"]["imageConfig"] == {
        "aspectRatio": "21:9",
        "imageSize": "4K",
        "personGeneration": "ALLOW_NONE",
    }
    with pytest.raises(ProviderError) as refused:
        content_bodies(request, None, provider="p", model_name="m", vertex=False)
    assert refused.value.param == "person_generation" and "Gemini API" in refused.value.message


def test_breakers_tell_regions_and_projects_apart_without_a_secret() -> None:
    def identity(region: str, project: str = "p-123456") -> TargetIdentity:
        fields = {"vertex_project_id": project, "vertex_region": region, "vertex_service_account_json": "{KEY}"}
        credential = Credential.of("vertex-ai", fields, {"vertex_service_account_json"})
        return TargetIdentity.of("vertex-ai", None, credential, "imagen-4.0-generate-001")

    assert identity("us-central1") == identity("us-central1")
    assert identity("us-central1") != identity("europe-west4")
    assert identity("us-central1") != identity("us-central1", "q-123456")
    assert "KEY" not in repr(identity("us-central1"))
