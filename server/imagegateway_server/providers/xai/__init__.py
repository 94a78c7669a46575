"""xAI's image API: ``POST {base}/images/generations`` for grok-imagine-image and grok-2-image.

OpenAI-like (``model``, ``prompt``, ``n`` up to 10, ``response_format`` ``url`` | ``b64_json``),
but xAI refuses ``size``, ``style`` and ``quality``: the newer models size by ``aspect_ratio`` and
``resolution`` instead, grok-2-image makes 1024x768 only. Errors are ``{"code", "error"}``, and a
wrong key is a 400.

``spec`` declares the provider; ``adapter`` makes the calls; ``request`` builds the body;
``models`` holds each model's aspect ratios and resolutions; ``errors`` reads xAI's error bodies;
``prices.json`` is its part of the built-in price table.
"""

PROVIDER = "x-ai"  # the canonical name (Portkey's), used by every module of this folder
