"""fal's model APIs through its queue: submit, poll ``status_url``, read ``response_url``, fetch the images.

``spec`` declares the provider; ``adapter`` submits, polls, reads and cancels; ``models`` holds each
model's sizes and parameters; ``request`` builds the model's input, refusing what it won't take;
``jobs`` reads the queue's status and result answers; ``hosts`` lists the queue and media hosts a
request's URLs may point to; ``errors`` reads fal's error bodies; ``prices.json`` is its part of the
built-in price table.
"""

PROVIDER = "fal-ai"  # the canonical name, used by every module of this folder
