"""Where fal's queue URLs may point: its queue host (status, result and cancel, with the key) and its
media hosts (the images, without it).

A submit to ``queue.fal.run/{model_id}`` answers ``status_url``, ``response_url`` and ``cancel_url``
on ``queue.fal.run`` (without the model's subpath: ``fal-ai/flux/dev`` is polled under
``fal-ai/flux``); the images are public files on fal's CDN (``v3.fal.media`` and its siblings under
``fal.media``), kept for a limited time.
"""

from __future__ import annotations

from imagegateway_server.providers.fal import PROVIDER
from imagegateway_server.providers.kit.job_urls import HostPatterns, JobHosts

API_HOSTS = ("queue.fal.run",)
MEDIA_HOSTS = ("fal.media", "*.fal.media")

JOB_HOSTS = JobHosts(PROVIDER, HostPatterns(API_HOSTS), HostPatterns(MEDIA_HOSTS))
