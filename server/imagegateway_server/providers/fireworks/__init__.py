"""Fireworks AI's FLUX workflows: ``POST {base}/workflows/accounts/fireworks/models/{model}/text_to_image``.

FLUX.1 [dev] and [schnell] (FP8) answer synchronously with the raw image bytes (``Accept:
image/png`` or ``image/jpeg``), one image per call, sized by ``aspect_ratio``. FLUX Kontext (pro,
max) is a task on Fireworks: submitted to ``.../models/{model}``, polled at ``.../get_result``
within the attempt's deadline, its image fetched from the delivery URL (``kontext``).

``spec`` declares the provider; ``adapter`` makes the calls; ``request`` builds the bodies;
``response`` reads the image (and the safety checker's verdict) out of an answer; ``kontext`` runs
a Kontext task; ``models`` holds each model's ratios and steps; ``errors`` reads Fireworks' three
error shapes; ``prices.json`` is its part of the built-in price table.
"""

PROVIDER = "fireworks-ai"  # the canonical name (Portkey's), used by every module of this folder
