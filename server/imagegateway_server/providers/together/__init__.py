"""Together AI's image API: ``POST {base}/images/generations`` serving FLUX and other open image models.

OpenAI-like, with Together's own fields: ``width``/``height`` instead of ``size``, ``steps``,
``seed``, ``negative_prompt``, ``guidance_scale``, and ``response_format`` ``base64`` | ``url``.

``spec`` declares the provider; ``adapter`` makes the calls; ``request`` builds the body;
``models`` holds each model's sizes, steps and n; ``errors`` reads Together's error envelope and
its safety checker's refusals; ``prices.json`` is its part of the built-in price table.
"""

PROVIDER = "together-ai"  # the canonical name (Portkey's), used by every module of this folder
