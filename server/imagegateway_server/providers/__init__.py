"""Image providers: the shared provider kit, one folder per provider, and the registry that finds them.

``kit/`` holds what every adapter shares (HTTP transport, body reading, failure classification,
image checks, size rules, translation). Each other subpackage is one provider: its adapter, its
request and response mapping, its models, its prices and a ``spec`` module declaring its
``ProviderSpec``. ``registry`` discovers those folders, so adding a provider is adding a folder.
"""
