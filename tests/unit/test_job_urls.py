"""The job-URL check: where an asynchronous provider's answers may send the gateway, and with its key or not."""

from __future__ import annotations

import logging

import pytest

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.job_progress import JobProgress
from imagegateway_server.providers.black_forest_labs.hosts import JOB_HOSTS as BFL
from imagegateway_server.providers.fal.hosts import JOB_HOSTS as FAL
from imagegateway_server.providers.kit.job_urls import HostPatterns
from imagegateway_server.providers.kit.transport import UpstreamClient
from imagegateway_server.security.ssrf_transport import guarded_client
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy

SUBMITTED = "https://api.bfl.ai/v1/flux-2-pro"
PLAIN = UpstreamClient()


@pytest.mark.parametrize(
    ("host", "matches"),
    [
        ("delivery-eu1.bfl.ai", True),
        ("DELIVERY-US.bfl.ai.", True),
        ("delivery-.bfl.ai", False),
        ("delivery-eu1.bfl.ai.attacker.example", False),
        ("x.delivery-eu1.bfl.ai", False),
        ("delivery-eu1xbfl.ai", False),
        ("attacker-delivery-eu1.bfl.ai", False),
    ],
)
def test_a_wildcard_stands_for_part_of_the_first_label_only(host: str, matches: bool) -> None:
    assert HostPatterns(("delivery-*.bfl.ai",)).matches(host) is matches


@pytest.mark.parametrize("pattern", ["*.com", "api.*.bfl.ai", "bfl", "delivery.*"])
def test_a_wildcard_anywhere_but_the_first_label_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError):
        HostPatterns((pattern,))


@pytest.mark.parametrize(
    "url",
    [
        "https://api.bfl.ai/v1/get_result?id=1",
        "https://api.eu.bfl.ai/v1/get_result?id=1",
        "https://api.us1.bfl.ai/v1/get_result?id=1",
    ],
)
def test_polling_urls_on_bfls_api_hosts_are_followed_with_the_key(url: str) -> None:
    assert BFL.check(url, role="polling_url", sends_key=True, submitted_to=SUBMITTED, client=PLAIN) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://delivery-eu1.bfl.ai/results/a.jpeg?se=1&sig=x",
        "https://bfldeliverysc.blob.core.windows.net/results/a.jpeg?sv=1&sig=x",
        "https://api.bfl.ai/v1/results/a.jpeg",
    ],
)
def test_result_urls_on_bfls_delivery_or_api_hosts_are_fetched(url: str) -> None:
    assert BFL.check(url, role="result.sample", sends_key=False, submitted_to=SUBMITTED, client=PLAIN) == url


@pytest.mark.parametrize(
    ("url", "sends_key"),
    [
        ("https://delivery-eu1.bfl.ai/v1/get_result?id=1", True),  # the key goes to API hosts only
        ("https://someone.blob.core.windows.net/x.jpeg", False),  # any Azure customer's blob
        ("https://bfl.ai.attacker.example/x.jpeg", False),
        ("http://delivery-eu1.bfl.ai/x.jpeg", False),  # provider hosts over https only
        ("https://user:pw@api.bfl.ai/v1/get_result", True),
        ("https://169.254.169.254/latest/meta-data", False),
        ("ftp://api.bfl.ai/x", True),
        ("not a url", False),
        ("", False),
        (None, False),
        (42, True),
    ],
)
def test_anything_else_is_refused_as_an_upstream_bug_and_logged(
    url: object, sends_key: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), pytest.raises(ProviderError) as raised:
        BFL.check(url, role="field", sends_key=sends_key, submitted_to=SUBMITTED, client=PLAIN)
    error = raised.value
    assert (error.kind, error.status_code, error.code) == (ErrorKind.UPSTREAM_BUG, 502, "upstream_url_refused")
    assert "field" in error.message and "not fetched" in error.message
    assert any(getattr(record, "url_field", None) == "field" for record in caplog.records)


def test_the_origin_a_job_was_submitted_to_is_followed_whatever_it_is() -> None:
    # A custom_host (already checked against the allow list when it was configured).
    submitted = "http://10.0.0.7:8080/v1/flux-2-pro"
    url = "http://10.0.0.7:8080/v1/get_result?id=1"
    assert BFL.check(url, role="polling_url", sends_key=True, submitted_to=submitted, client=PLAIN) == url
    with pytest.raises(ProviderError):
        BFL.check("http://10.0.0.7:8081/x", role="polling_url", sends_key=True, submitted_to=submitted, client=PLAIN)


def test_hosts_on_the_operators_allow_list_are_followed() -> None:
    listed = guarded_client(UpstreamHostPolicy(["cdn.internal.example", "127.0.0.1"]))
    for url in ("https://cdn.internal.example/a.jpeg", "http://127.0.0.1:9/a.jpeg"):
        assert BFL.check(url, role="result.sample", sends_key=False, submitted_to=SUBMITTED, client=listed) == url
    with pytest.raises(ProviderError):
        BFL.check(
            "https://cdn.other.example/a.jpeg",
            role="result.sample",
            sends_key=False,
            submitted_to=SUBMITTED,
            client=listed,
        )


def test_fals_queue_and_media_hosts() -> None:
    submitted = "https://queue.fal.run/fal-ai/flux/dev"
    status = "https://queue.fal.run/fal-ai/flux/requests/1/status"
    assert FAL.check(status, role="status_url", sends_key=True, submitted_to=submitted, client=PLAIN) == status
    for media in ("https://v3.fal.media/files/a.jpeg", "https://fal.media/files/a.png"):
        assert FAL.check(media, role="images[].url", sends_key=False, submitted_to=submitted, client=PLAIN) == media
    with pytest.raises(ProviderError):
        FAL.check("https://v3.fal.media/x", role="status_url", sends_key=True, submitted_to=submitted, client=PLAIN)


def test_job_progress_adds_up_polls_and_spans_the_wait_of_every_job() -> None:
    progress = JobProgress()
    assert progress.wait_seconds(now=5.0) == 0.0
    progress.job_accepted(now=10.0)
    progress.job_accepted(now=10.5)
    progress.polled("Pending")
    progress.polled("IN_QUEUE", 3)
    assert (progress.polls, progress.status, progress.queue_position) == (2, "IN_QUEUE", 3)
    progress.job_settled(now=12.0)
    assert progress.wait_seconds(now=13.0) == 3.0  # one job still open: the wait runs on
    progress.job_settled(now=14.0)
    assert progress.wait_seconds(now=20.0) == 4.0
