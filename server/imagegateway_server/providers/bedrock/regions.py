"""The AWS regions Bedrock Runtime may be called in, and the host of each, from botocore's partition data.

botocore ships the list of every region of each AWS partition (``partitions.json``, updated with
each release); the regions of the partitions whose hosts end in ``amazonaws.com`` (the commercial
one and GovCloud) are the ones a credential's ``aws_region`` may name. A region outside the list is
refused when the credential is saved, so a typo is caught then and no credential can steer the call
to a host that is not Bedrock's; a region newer than the installed botocore is reached by upgrading
it, or with ``custom_host``.
"""

from __future__ import annotations

import re

from botocore.loaders import Loader

DNS_SUFFIX = "amazonaws.com"
SERVICE_HOST_PREFIX = "bedrock-runtime"


def _regions() -> frozenset[str]:
    partitions = Loader().load_data("partitions")["partitions"]
    return frozenset(
        region
        for partition in partitions
        if partition["outputs"]["dnsSuffix"] == DNS_SUFFIX
        for region in partition["regions"]
        if not region.endswith("-global")  # the partition's global endpoint, not a region
    )


REGIONS: frozenset[str] = _regions()
# Matched whole by the credential schema when a config or virtual key is saved.
REGION_SHAPE = re.compile("|".join(re.escape(region) for region in sorted(REGIONS)))


def runtime_host(region: str) -> str:
    """Bedrock Runtime's public host in ``region`` (``bedrock-runtime.us-east-1.amazonaws.com``)."""
    return f"{SERVICE_HOST_PREFIX}.{region}.{DNS_SUFFIX}"


PUBLIC_HOSTS: frozenset[str] = frozenset(runtime_host(region) for region in REGIONS)
