"""Amazon Bedrock's image models: Nova Canvas, Titan Image Generator v2, and Stability's models on Bedrock.

Every model is called with Bedrock Runtime's ``InvokeModel``
(``POST https://bedrock-runtime.{region}.amazonaws.com/model/{modelId}/invoke``), signed with SigV4
by botocore's signer or carrying a Bedrock API key as a Bearer; the body and the answer are each
model family's own.

``spec`` declares the provider; ``adapter`` makes the calls; ``regions`` says which regions (and so
which hosts) exist; ``signing`` signs a call; ``models`` holds each model's table and family;
``request`` builds the bodies; ``response`` reads the images and the content filter's verdict;
``errors`` reads AWS's error answers; ``prices.json`` is its part of the built-in price table.
"""

PROVIDER = "bedrock"  # the canonical name (Portkey's), used by every module of this folder
