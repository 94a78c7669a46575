"""Where Black Forest Labs' task URLs may point: its API hosts (polls, with ``x-key``) and its
delivery hosts (signed result files, without it).

``polling_url`` lives on the API host that took the task (``api.bfl.ai``, or a regional one such
as ``api.eu.bfl.ai`` / ``api.us1.bfl.ai``; ``api.bfl.ml`` is the legacy name); ``result.sample`` is
a URL signed for about ten minutes on ``delivery-<region>.bfl.ai``, or, for older results, on BFL's
own Azure blob storage accounts. ``*.blob.core.windows.net`` as a whole is not listed: anyone can
host a blob there.
"""

from __future__ import annotations

from imagegateway_server.providers.black_forest_labs import PROVIDER
from imagegateway_server.providers.kit.job_urls import HostPatterns, JobHosts

API_HOSTS = (
    "api.bfl.ai",
    "api.eu.bfl.ai",
    "api.us.bfl.ai",
    "api.eu1.bfl.ai",
    "api.eu2.bfl.ai",
    "api.eu4.bfl.ai",
    "api.us1.bfl.ai",
    "api.us2.bfl.ai",
    "api.bfl.ml",
)
DELIVERY_HOSTS = (
    "delivery-*.bfl.ai",
    "delivery.bfl.ai",
    "bfldeliverysc.blob.core.windows.net",
    "bflapistorage.blob.core.windows.net",
)

JOB_HOSTS = JobHosts(PROVIDER, HostPatterns(API_HOSTS), HostPatterns(DELIVERY_HOSTS))
