"""The REST success body is spliced as bytes; it must equal what json.dumps would have produced."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from imagegateway_server.api.rest import images_body
from imagegateway_server.domain.request import ResponseFormat
from imagegateway_server.domain.result import GeneratedImage

images = st.builds(
    GeneratedImage,
    data=st.binary(max_size=64),
    mime_type=st.sampled_from(["image/png", "image/jpeg"]),
    url=st.one_of(st.none(), st.text(max_size=30)),
    revised_prompt=st.one_of(st.none(), st.text(max_size=30)),
)


def expected(created: int, items: list[GeneratedImage], fmt: ResponseFormat) -> object:
    data = []
    for image in items:
        encoded = base64.b64encode(image.data or b"").decode()
        if fmt is ResponseFormat.URL:
            item = {"url": image.url or f"data:{image.mime_type};base64,{encoded}"}
        else:
            item = {"b64_json": encoded}
        if image.revised_prompt:
            item["revised_prompt"] = image.revised_prompt
        data.append(item)
    return {"created": created, "data": data}


@given(
    st.integers(min_value=0, max_value=2**40),
    st.lists(images, max_size=3),
    st.sampled_from([ResponseFormat.B64_JSON, ResponseFormat.URL]),
)
def test_spliced_body_is_the_json_of_openais_shape(
    created: int, items: list[GeneratedImage], fmt: ResponseFormat
) -> None:
    assert json.loads(images_body(created, items, fmt)) == expected(created, items, fmt)
