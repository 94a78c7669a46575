"""The provider kit: what every provider adapter shares, one module per job.

``interface`` (what the router calls), ``spec`` (what a provider folder declares), ``transport``
(the pooled HTTP client), ``headers``, ``bodies`` and ``base64_json`` (reading answers),
``errors``, ``network_failures`` and ``status`` (classifying failures), ``images``, ``fan_out``,
``http_adapter`` (the adapter base class), and the provider-neutral request rules: ``sizes``,
``model_spec``, ``model_aliases`` and ``translation``.
"""
