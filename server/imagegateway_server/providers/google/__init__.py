"""Google's Gemini API (AI Studio): Gemini image models by ``:generateContent``, Imagen by ``:predict``.

``spec`` declares the provider; ``adapter`` says where calls go and how the API key travels (the
calls themselves are the kit's ``google_adapter``); ``models`` lists the models and what each takes;
``prices.json`` is its part of the built-in price table.
"""

PROVIDER = "google"  # the canonical name (Portkey's), used by every module of this folder
