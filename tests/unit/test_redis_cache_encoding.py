"""The response cache's Redis encoding keeps every field of an answer (a field added to the result or
an image must not be lost when a replica serves it from Redis), and reads anything else as a miss."""

from __future__ import annotations

import dataclasses

from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.state.cache_store import CachedAnswer
from imagegateway_server.state.redis.cache_store import decode_answer, encode_answer


def _every_field_set() -> CachedAnswer:
    image = GeneratedImage(
        data=b"\x89PNG-bytes",
        mime_type="image/png",
        width=1024,
        height=1024,
        revised_prompt="a lighthouse",
        seed=7,
        provider="openai",
        model="gpt-image-1.5",
        size="1024x1024",
    )
    url_image = GeneratedImage(
        data=None, mime_type="image/jpeg", url="https://delivery.example/x.jpg", url_expires_at=1_800_000_000.5
    )
    result = ImageResult(
        images=(image, url_image),
        model="gpt-image-1.5",
        created=1_765_000_000,
        provider_request_id="req_1",
        usage={"input_tokens": 10, "output_tokens": 4160, "input_tokens_details": {"text_tokens": 10}},
        translations=("size=1792x1024->1536x1024",),
        background="opaque",
        output_format="png",
        quality="high",
        size="1024x1024",
        sent_size="1024x1024",
        sent_quality="high",
        safety_identifier="hashed-user-42",
        svg_usage={
            "model": "svg-author",
            "input_tokens": 1,
            "output_tokens": 2,
            "reasoning_tokens": 1,
            "total_tokens": 3,
        },
    )
    return CachedAnswer(result, "openai", "config.targets[1]", "identity-digest")


def test_every_field_of_the_answer_survives_the_round_trip() -> None:
    answer = _every_field_set()
    for field in dataclasses.fields(ImageResult):
        assert getattr(answer.result, field.name) not in (None, "", ()), f"set {field.name} in this test"
    assert decode_answer(encode_answer(answer)) == answer


def test_a_blob_of_another_format_or_a_truncated_one_is_a_miss() -> None:
    blob = encode_answer(_every_field_set())
    assert decode_answer(b"IGC1" + blob[4:]) is None
    assert decode_answer(blob[:-3]) is None
    assert decode_answer(b"") is None
