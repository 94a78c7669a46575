"""Recraft's image API: ``POST {base}/images/generations``, OpenAI-compatible, for the Recraft V2-V4.1 models.

Sizes come from a list per model, ``style`` exists only before V4, answers carry URLs that expire
(about a day) or ``b64_json``, and a 401 is plain text.

``spec`` declares the provider; ``adapter`` makes the calls; ``request`` builds the body;
``models`` holds each model's sizes and styles; ``errors`` reads Recraft's error bodies;
``prices.json`` is its part of the built-in price table.
"""

PROVIDER = "recraft-ai"  # the canonical name (Portkey's), used by every module of this folder
