"""Black Forest Labs' FLUX API: submit a task, poll its ``polling_url``, fetch the signed ``result.sample``.

``spec`` declares the provider; ``adapter`` submits, polls and fetches; ``models`` holds each
model's sizes and parameters; ``request`` builds the task body, refusing what a model won't take;
``jobs`` reads the poll answers (states, moderation); ``hosts`` lists the API and delivery hosts a
task's URLs may point to; ``errors`` reads BFL's error bodies; ``prices.json`` is its part of the
built-in price table.
"""

PROVIDER = "black-forest-labs"  # the canonical name, used by every module of this folder
