"""Review page benchmark: the time to answer one decision with 1,000 items waiting.

Against the real app (uvicorn on loopback) and a real broker: 1,000 uncertain results are put on
a fresh review topic and read into the queue by the app's own feed; then one reviewer decides
items one after the other, as the page does on a key press: POST /decide (the decision is
delivered to the decisions topic, acknowledged, stored) and GET / (the next item, claimed and
rendered). Prints p50/p95/p99/max of each, over ``--decisions`` key presses. The image itself is
fetched by the browser after the page; its time is measured separately (GET /image/<id>).

    .venv/bin/python bench/review_bench.py [--bootstrap HOST:PORT] [--waiting N] [--decisions N]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conf.loader import load_settings  # noqa: E402
from review.service import ReviewService  # noqa: E402
from serving.schema import Result, encode_result  # noqa: E402
from stack.process import free_port, free_ports  # noqa: E402


def start_broker(state: Path) -> tuple[object, str]:
    from stack.kafka import KafkaBroker

    port, controller_port = free_ports(2)
    broker = KafkaBroker(state_dir=state, port=port, controller_port=controller_port)
    broker.start(180)
    return broker, broker.bootstrap


def fill_review_topic(bootstrap: str, topic: str, count: int, image: Path) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    now = time.time()
    for i in range(count):
        result = Result(
            id=f"bench-{i:05d}",
            label="safe" if i % 3 else "harmful",
            p_harmful=0.4 + i % 20 / 100,
            threshold=0.5,
            review=True,
            model_name="harmscan",
            model_version=str(1 + i % 3),
            source=str(image),
            sent_at=None,
            received_at=now - 3600 + i,
            completed_at=now - 3600 + i,
            latency_ms=5.0,
        )
        producer.produce(topic, key=result.id.encode(), value=encode_result(result))
        producer.poll(0)
    assert producer.flush(60) == 0


def percentiles(samples: list[float]) -> str:
    ms = np.array(samples) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return f"p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 {p99:6.1f} ms  max {ms.max():6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    parser.add_argument("--waiting", type=int, default=1000)
    parser.add_argument("--decisions", type=int, default=300)
    args = parser.parse_args()
    import httpx
    import uvicorn

    tmp = Path(tempfile.mkdtemp(prefix="review-bench-"))
    broker, bootstrap = (None, args.bootstrap) if args.bootstrap else start_broker(tmp / "kafka")
    image = next((REPO / "mirror" / "images" / "test").glob("d*.jpg"))
    tag = uuid.uuid4().hex[:8]
    settings = load_settings(
        "ci",
        [
            f"paths.root={tmp / 'hs'}",
            f"kafka.bootstrap_servers={bootstrap}",
            f"kafka.review_topic=bench-review-{tag}",
            f"kafka.decisions_topic=bench-decisions-{tag}",
            f"review.group_id=bench-{tag}",
            "review.token=bench",
            f"serving.allowed_roots=[{image.parent}]",
        ],
        env={},
    )
    service = ReviewService.build(settings)
    fill_review_topic(bootstrap, settings.kafka.review_topic, args.waiting, image)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(service.app(), host="127.0.0.1", port=port, log_level="warning")
    )
    service.feed.start()
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 120
    while service.store.waiting() < args.waiting and time.monotonic() < deadline:
        time.sleep(0.2)
    print(f"{service.store.waiting()} items waiting; {args.decisions} decisions, one at a time")
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=False)
    try:
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
        client.post("/login", data={"csrf": csrf, "name": "bench", "secret": "bench"})
        decide, page, image_times = [], [], []
        text = client.get("/").text
        for i in range(args.decisions):
            request_id = re.search(r'name="request_id" value="([^"]+)"', text).group(1)  # type: ignore[union-attr]
            csrf = re.search(r'name="csrf" value="([^"]+)"', text).group(1)  # type: ignore[union-attr]
            started = time.perf_counter()
            response = client.post(
                "/decide",
                data={
                    "csrf": csrf,
                    "request_id": request_id,
                    "verdict": ("harmful", "safe")[i % 2],
                },
            )
            decided = time.perf_counter()
            assert response.status_code == 303, response.text
            text = client.get("/").text
            shown = time.perf_counter()
            client.get(f"/image/{request_id}")
            image_times.append(time.perf_counter() - shown)
            decide.append(decided - started)
            page.append(shown - started)
        print(f"POST /decide (delivered + stored):    {percentiles(decide)}")
        print(f"key press to next page (decide + GET): {percentiles(page)}")
        print(f"GET /image (after the page):           {percentiles(image_times)}")
        print(f"{service.store.waiting()} items still waiting")
    finally:
        server.should_exit = True
        time.sleep(1)
        service.close()
        if broker is not None:
            broker.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
