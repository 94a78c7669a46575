"""Azure OpenAI's Images API: ``POST {base}/deployments/{deployment_id}/images/generations?api-version=...``.

Azure serves OpenAI's image models (dall-e-3, the gpt-image-1 family) from a customer's resource
(``https://{resource_name}.openai.azure.com``), one model per deployment, and speaks OpenAI's body
and answer (``kit.openai_images``) with its own URL, auth headers and content-filter errors.

``spec`` declares the provider; ``adapter`` makes the calls; ``models`` names the default model;
``errors`` reads Azure's error envelope and content filter; ``prices.json`` is its part of the
built-in price table.
"""

PROVIDER = "azure-openai"  # the canonical name (Portkey's), used by every module of this folder
