"""Azure OpenAI's image models: OpenAI's tables (``kit.openai_image_models``), and the model assumed by default.

The deployment decides which model generates; the request's model (or, when none is named, the
default below) is what translation reads, what the answer reports and what is priced. dall-e-3 is
the default because it is the model Azure's GA image API versions serve.
"""

from __future__ import annotations

from imagegateway_server.providers.kit.openai_image_models import model_spec

DEFAULT_MODEL = "dall-e-3"

__all__ = ["DEFAULT_MODEL", "model_spec"]
