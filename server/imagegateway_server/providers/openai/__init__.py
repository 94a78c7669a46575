"""OpenAI's Images API: ``POST {base}/images/generations`` for dall-e-2, dall-e-3 and the gpt-image models.

``spec`` declares the provider; ``adapter`` makes the calls; ``request`` maps an ImageRequest to the
JSON body; ``models`` holds each model family's sizes, qualities and styles; ``errors`` reads
OpenAI's error envelope; ``prices.json`` is its part of the built-in price table.
"""

PROVIDER = "openai"  # the canonical name, used by every module of this folder
