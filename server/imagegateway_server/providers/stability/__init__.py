"""Stability AI: the legacy v1 engines and the v2beta Stable Image services (core, ultra, sd3).

``spec`` declares the provider; ``adapter`` makes the calls; ``models`` says which endpoint serves a
model and what each model takes; ``request`` builds the v1 JSON body and the v2beta forms;
``response`` reads the images (and the content filter's verdict) out of an answer; ``errors`` reads
Stability's error bodies; ``prices.json`` is its part of the built-in price table.
"""

PROVIDER = "stability-ai"  # the canonical name, used by every module of this folder
