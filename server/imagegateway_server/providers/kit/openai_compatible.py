"""The body sent to an OpenAI-compatible server (vLLM, LocalAI, SiliconFlow, ...) for a model OpenAI does not have.

Such a server speaks OpenAI's ``POST /images/generations`` but serves its own models, which take
parameters OpenAI's do not (``seed``, ``negative_prompt``, ``num_inference_steps``, ...). The
gateway cannot know them, so nothing is translated or refused: every parameter the caller set is
sent under its own name, exactly as given, and the server validates it. ``response_format`` is
``url`` when the caller wants URLs, else ``b64_json``.
"""

from __future__ import annotations

from typing import Any

from imagegateway_server.domain.request import ImageRequest, ResponseFormat


def untranslated_body(request: ImageRequest, model: str) -> dict[str, Any]:
    """The JSON body carrying every parameter of ``request`` as given."""
    body: dict[str, Any] = {"prompt": request.prompt, "model": model, "n": request.n}
    body.update({name: value for name, value in request.set_fields().items() if name not in ("model", "n")})
    body["response_format"] = "url" if request.response_format is ResponseFormat.URL else "b64_json"
    return body
