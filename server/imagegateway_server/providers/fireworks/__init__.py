"""Fireworks AI's FLUX workflows: ``POST {base}/workflows/accounts/fireworks/models/{model}/text_to_image``.

FLUX.1 [dev] and [schnell] (FP8) answer synchronously with the raw image bytes (``Accept:
image/png`` or ``image/jpeg``), one image per call, sized by ``aspect_ratio``. FLUX Kontext on
Fireworks is asynchronous (submit, then ``get_result``) and is not served by this adapter: it is
refused naming the model (Black Forest Labs' own API serves it).

``spec`` declares the provider; ``adapter`` makes the calls; ``request`` builds the body;
``response`` reads the image (and the safety checker's verdict) out of an answer; ``models`` holds
each model's ratios and steps; ``errors`` reads Fireworks' three error shapes; ``prices.json`` is
its part of the built-in price table.
"""

PROVIDER = "fireworks-ai"  # the canonical name (Portkey's), used by every module of this folder
