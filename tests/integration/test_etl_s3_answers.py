"""What the image download makes of S3 answers a real bucket gives, against the mirror's S3 server.

AWS S3 answers a GET of a missing key with 403 AccessDenied (not 404) when the reader may not
list the bucket, which is how a public-read bucket policy (``s3:GetObject`` only) is usually
written; a bucket that is not public at all answers 403 to every GET. moto does not evaluate
bucket policies, so the 403 is injected for one key; every other key is served by moto.
"""

from __future__ import annotations

import csv
from urllib.parse import urlparse

import pandas as pd
import pytest
from botocore.awsrequest import AWSResponse

import tasks.images
from flows.etl import etl
from tasks.images import VerifiedState, fetch_round, make_s3_client
from tests.fixtures.mirror import EXPECTED_CSV

DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>"
)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: object):
        yield self.body


def good_images(count: int) -> list[dict[str, str]]:
    with EXPECTED_CSV.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["Expected"] in ("harmful", "safe")]
    return [{"image_id": r["ImageID"], "subset": r["Subset"]} for r in rows[:count]]


def test_access_denied_is_named_not_counted_as_a_network_fault(
    mirror_bucket, make_settings, tmp_path
):
    """A 403 was reported as ``network``: the user chased a network fault that was not there."""
    settings = make_settings(*mirror_bucket, "etl.retries=1")
    rows = good_images(3)
    denied = f"{rows[0]['subset']}/{rows[0]['image_id']}.jpg"
    client = make_s3_client(settings.openimages, settings.etl)

    def deny(request, **_):
        if "/".join(urlparse(request.url).path.split("/")[-2:]) == denied:
            return AWSResponse(request.url, 403, {"Content-Type": "application/xml"}, _Raw(DENIED))
        return None

    client.meta.events.register("before-send.s3.GetObject", deny)
    state = VerifiedState(tmp_path / "images")
    stats = fetch_round(pd.DataFrame(rows), client, state, settings.openimages, settings.etl)
    assert stats["ok"] == 2
    assert stats["forbidden"] == 1
    assert stats["network"] == 0
    # Not remembered: a bucket whose policy is fixed serves it on the next run.
    assert rows[0]["image_id"] not in state.records


@pytest.mark.slow
def test_the_flow_reports_access_denied_by_its_name(
    prefect_harness, mirror_bucket, make_source, monkeypatch
):
    image = good_images(1)[0]
    denied = f"{image['subset']}/{image['image_id']}.jpg"
    real = tasks.images.make_s3_client

    def denying_client(openimages, etl_settings):
        client = real(openimages, etl_settings)

        def deny(request, **_):
            if "/".join(urlparse(request.url).path.split("/")[-2:]) == denied:
                return AWSResponse(request.url, 403, {}, _Raw(DENIED))
            return None

        client.meta.events.register("before-send.s3.GetObject", deny)
        return client

    monkeypatch.setattr(tasks.images, "make_s3_client", denying_client)
    result = etl(source=make_source(*mirror_bucket, "etl.max_per_side=10000",
                                    "etl.max_per_label=10000", "etl.balance=false"))  # fmt: skip
    assert result.failed_ids["forbidden"] == [image["image_id"]]
    assert "network" not in result.failures


def test_an_interrupt_stops_the_queued_downloads_and_keeps_what_was_verified(
    mirror_bucket, make_settings, tmp_path
):
    """Ctrl-C during the download ran every queued GET before the command could exit."""
    settings = make_settings(*mirror_bucket, "etl.download_workers=1")
    rows = good_images(12)
    client = make_s3_client(settings.openimages, settings.etl)
    gets: list[str] = []

    def interrupt_the_third(request, **_):
        gets.append(request.url)
        if len(gets) == 3:
            raise KeyboardInterrupt  # as Ctrl-C reaches the download
        return None

    client.meta.events.register("before-send.s3.GetObject", interrupt_the_third)
    state = VerifiedState(tmp_path / "images")
    with pytest.raises(KeyboardInterrupt):
        fetch_round(pd.DataFrame(rows), client, state, settings.openimages, settings.etl)
    # The one worker may have started a 4th GET; none of the 8 queued after it was fetched.
    assert len(gets) <= 4
    kept = len(state.records)
    assert kept in (2, 3)  # what was verified before the interrupt stays for the next run

    client.meta.events.unregister("before-send.s3.GetObject", interrupt_the_third)
    resumed = fetch_round(pd.DataFrame(rows), client, state, settings.openimages, settings.etl)
    assert (resumed["skipped"], resumed["ok"]) == (kept, 12 - kept)
