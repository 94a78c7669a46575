"""Google Vertex AI: Imagen by ``:predict`` and Gemini image models by ``:generateContent``, on a project and region.

``spec`` declares the provider and its credential; ``adapter`` says where calls go and how they
authenticate (the calls themselves are the kit's ``google_adapter``); ``service_account`` turns a
service account key into cached access tokens; ``models`` lists the models and what each takes;
``prices.json`` is its part of the built-in price table.
"""

PROVIDER = "vertex-ai"  # the canonical name (Portkey's), used by every module of this folder
