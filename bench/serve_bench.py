"""Serving benchmark: throughput and latency through Kafka beside the model-alone ceiling.

For each architecture (MobileNetV2, ResNet50; random weights, same compute as trained ones), the
bundle a registration makes (float export, pixel-input float and int8 graphs, the int8 calibrated
on the mirror's training images), and for each precision (float, int8) side by side in one run:

0. *Original way*: the work harmscan replaced: eager torch, one image at a time (full decode,
   the float preset, ``model(x)``), for the ratios.
1. *Infer only*: the served graph on a ready uint8 batch (no decode).
2. *Ceiling*: decode + preprocess + infer, in batches, in a loop (`BatchClassifier.classify`
   on path requests, the consumer's own code path, no Kafka).
3. *Through the broker*: a real consumer (`ServingConsumer`) serves path requests sent by
   `RequestProducer` at fixed offered loads; a reader timestamps each result. Latency is request
   ``sent_at`` to result received; throughput is results per second over the run. The
   saturated load is set against a ceiling measured just before it (on a shared host the two
   drift apart within minutes) and also reported as a steady rate (`steady_rate`); the CPU
   per image of the bench's process, the decode workers and the broker is printed for the
   ceiling and for every load, the robust comparison on a shared host.

Images are 1024x768 JPEGs (the size of Open Images photos) made from the mirror's images.
Each served model is built at every ``--image-sizes`` size (default 224 and 160 px: training's
default, which ``demo --full`` ships, and the size the quick ``demo`` trains at), so the sizes
are served side by side too. Prints tables (the last: saturated throughput and p99 at the
highest fixed load against the first size's first precision) and writes a latency histogram PNG.

``--decode-compare`` measures instead what decoding in worker processes (`serving.decoding`, with
hard limits) costs against decoding in the consumer's own threads (the earlier design), in the
same run, alternating the two (A B A B ...): the ceiling and the saturation throughput through the
broker, and the ratio of the medians.

    .venv/bin/python bench/serve_bench.py [--quick] [--image-sizes 224,160] [--bootstrap HOST:PORT]
    .venv/bin/python bench/serve_bench.py --decode-compare [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.standalone_consumer import cpu_seconds  # noqa: E402
from conf.loader import load_settings  # noqa: E402
from conf.settings import ServingSettings, Settings  # noqa: E402
from harmscan.bundle import ONNX_FILE, ServingSpec  # noqa: E402
from harmscan.models import ARCHS  # noqa: E402
from serving.graphs import PRECISION_SETTINGS  # noqa: E402
from serving.model import LoadedModel  # noqa: E402
from serving.schema import decode_result, encode_request  # noqa: E402
from serving.source import load_model_folder  # noqa: E402

if TYPE_CHECKING:
    from serving.producer import RequestProducer


# What one served model is in this bench: (architecture, input size in px, precision).
Key = tuple[str, int, str]


@dataclass
class Row:
    arch: str
    size: int
    precision: str
    load: str
    sent: int
    throughput: float
    p50: float
    p95: float
    p99: float
    latencies: list[float]


def make_images(root: Path, count: int) -> list[Path]:
    """1024x768 JPEGs made from the mirror's images (upscaled, a little noise)."""
    sources = sorted(glob.glob(str(REPO / "mirror" / "images" / "**" / "*.jpg"), recursive=True))
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for source in sources:
        if len(paths) >= count:
            break
        try:
            image = Image.open(source).convert("RGB").resize((1024, 768), Image.Resampling.BICUBIC)
        except OSError:
            continue
        array = np.asarray(image).astype(np.int16) + rng.integers(-8, 8, (768, 1024, 3))
        path = root / f"img-{len(paths):04d}.jpg"
        Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def make_bundle(
    arch: str, folder: Path, calibration: list[Path], image_size: int = 224
) -> torch.nn.Module:
    """A random-weight model of ``arch`` in the bundle layout with its float and int8 graphs,
    trained (as far as its preset goes) at ``image_size`` px, as registration writes it."""
    from harmscan.models import WeightsSource, build_model, export_onnx
    from harmscan.precision import build_served_models
    from harmscan.presets import EvalPreset
    from harmscan.quantize import QuantizeOptions

    extra = folder / "extra_files"
    spec = ServingSpec(
        arch=arch, threshold=0.5, review_low=0.4, review_high=0.6,
        **EvalPreset(image_size=image_size).spec_fields(),
    )  # fmt: skip
    module = build_model(arch, WeightsSource("none")).eval()
    export_onnx(module, extra / ONNX_FILE, spec.image_size)
    served = build_served_models(
        extra / ONNX_FILE, extra, spec, calibration=calibration, checks=[],
        options=QuantizeOptions(calibration_images=32),
    )  # fmt: skip
    # Random weights carry no accuracy to check: the bench serves int8 by forcing it.
    served.spec.write(extra)
    return module


def load(folder: Path, precision: str, threads: int, batch: int, workers: int) -> LoadedModel:
    """The bundle's graph of ``precision``, loaded as the consumer loads it."""
    return load_model_folder(
        folder, name=f"bench-{folder.name}", version="1", runtime="onnx", threads=threads,
        workers=workers, warmup_batch=batch, precision=precision, max_batch=batch,
    )  # fmt: skip


def original_way(module: torch.nn.Module, images: list[Path], seconds: float) -> float:
    """Images per second the replaced work's way: eager torch, one image at a time."""
    from harmscan.imageio import load_image
    from harmscan.presets import EvalPreset

    preset = EvalPreset()
    done, start = 0, time.perf_counter()
    with torch.inference_mode():
        while time.perf_counter() - start < seconds:
            for path in images[:16]:
                module(preset(load_image(path)).unsqueeze(0))
                done += 1
    return done / (time.perf_counter() - start)


def infer_only(model: LoadedModel, images: list[Path], batch: int, seconds: float) -> float:
    """Images per second of the served graph alone on ready batches (decoding not counted)."""
    from harmscan.imageio import load_image

    arrays = [model.preset.model_input(load_image(p, draft=model.preset.draft_size))
              for p in images[:batch]]  # fmt: skip
    ready = np.stack(arrays)
    model.p_harmful(ready)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += len(model.p_harmful(ready))
    return done / (time.perf_counter() - start)


class InProcessDecoder:
    """The earlier design, for comparison: decode in the calling thread, no limits."""

    replaced = 0

    def decode(self, data: bytes, preset, limits) -> np.ndarray:
        from harmscan.imageio import decode_image

        image = decode_image(
            data, max_pixels=limits.max_pixels, max_bytes=len(data),
            max_aspect_ratio=limits.max_aspect_ratio,
            draft=preset.draft_size if limits.jpeg_draft else None,
        )  # fmt: skip
        return preset.model_input(image)

    def close(self) -> None:
        pass


DECODE_IN_PROCESS = False  # switched by --decode-compare


def make_classifier(settings):
    """The consumer's classifier; with DECODE_IN_PROCESS its decoder is `InProcessDecoder`."""
    from serving.service import make_classifier as serving_classifier

    classifier = serving_classifier(settings)
    if DECODE_IN_PROCESS:
        classifier.decoder.close()
        classifier.decoder = InProcessDecoder()  # type: ignore[assignment]
    return classifier


def ceiling(settings, model: LoadedModel, images: list[Path], seconds: float) -> float:
    """Images per second of decode + preprocess + infer alone, in consumer-sized batches."""
    classifier = make_classifier(settings)
    batch = settings.serving.batch_size
    values = [encode_request(str(i), path=str(p)) for i, p in enumerate(images)]
    classifier.classify(values[:batch], model, time.time())  # warm-up
    cpu = CpuMeter(classifier)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i in range(0, len(values), batch):
            done += len(classifier.classify(values[i : i + batch], model, time.time()))
    elapsed = time.perf_counter() - start
    cpu.report(done)
    classifier.close()
    return done / elapsed


class Reader(threading.Thread):
    """Reads the results topic and stamps each result's arrival."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        from confluent_kafka import Consumer

        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-reader-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                # librdkafka's default fetch.wait.max.ms (500): the broker answers a waiting fetch
                # as soon as a result is appended, so a shorter wait adds no speed, only empty
                # fetches. At 5 ms they cost the broker 20-30 % of a core (measured idle on this
                # 2-core host), taken from the consumer being measured.
            }
        )
        self.consumer.subscribe([topic])
        self.arrivals: dict[str, tuple[float, float]] = {}
        # per request: sent, received by the consumer, scored, readable by this reader
        self.stamps: dict[str, tuple[float, float, float, float]] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            # consume(n, t) would wait for n messages: take one as it comes, then what is there.
            first = self.consumer.consume(1, 0.1)
            for message in first + (self.consumer.consume(500, 0) if first else []):
                if message.error() is None:
                    result = decode_result(message.value())
                    now = time.time()
                    self.arrivals.setdefault(result.id, (result.sent_at or 0.0, now))
                    self.stamps.setdefault(
                        result.id,
                        (result.sent_at or 0.0, result.received_at, result.completed_at, now),
                    )
        self.consumer.close()


def warm_up(producer: RequestProducer, reader: Reader, images: list[Path]) -> None:
    """Send 4 warm-up requests through ``producer`` and wait (up to 120 s) for their results."""
    for i in range(4):
        producer.send_path(images[i], request_id=f"warm-{i}")
    producer.flush()
    deadline = time.monotonic() + 120
    while len(reader.arrivals) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)


def send_and_wait(
    producer: RequestProducer, reader: Reader, images: list[Path], count: int, timeout: float = 300
) -> list[str]:
    """Send ``count`` requests cycling over ``images``, flush, and wait until every result was
    read (at most ``timeout`` seconds; the caller counts what arrived). Returns the request ids."""
    ids = [producer.send_path(images[i % len(images)]) for i in range(count)]
    producer.flush()
    deadline = time.monotonic() + timeout
    while not set(ids) <= set(reader.arrivals) and time.monotonic() < deadline:
        time.sleep(0.05)
    return ids


def through_broker(
    base_overrides: list[str],
    model: LoadedModel,
    images: list[Path],
    rate: float | None,
    count: int,
    bootstrap: str,
) -> tuple[int, float, list[float]]:
    """Serve ``count`` requests offered at ``rate``/s (None: all at once); (n, img/s, latencies)."""
    from serving.consumer import ServingConsumer
    from serving.producer import RequestProducer
    from serving.service import make_consumer, make_producer
    from serving.topics import ensure_serving_topics

    settings = load_settings("ci", bench_topics(base_overrides), env={})
    ensure_serving_topics(settings)
    stop = threading.Event()
    classifier = make_classifier(settings)
    loop = ServingConsumer(
        settings, model, classifier, make_consumer(settings), make_producer(settings),
        stop_event=stop,
    )  # fmt: skip
    consumer_thread = threading.Thread(target=loop.run, daemon=True)
    reader = Reader(bootstrap, settings.kafka.results_topic)
    reader.start()
    consumer_thread.start()
    # Warm-up through the producer that then sends the measured load: the group has joined, the
    # model has run, and the producer has its connection, topic metadata and idempotent producer
    # id. (A fresh producer buffers its first ~0.5 s of requests while it gets those: that is
    # client start-up, not serving latency, and used to be the whole p99 at 10/s and 50/s.)
    producer = RequestProducer(settings, rate=rate)
    warm_up(producer, reader, images)
    cpu = CpuMeter(classifier)
    ids = send_and_wait(producer, reader, images, count)
    cpu.report(len(ids))
    producer.close()
    stop.set()
    reader.stop.set()
    consumer_thread.join(30)
    reader.join(10)
    classifier.close()
    got = [reader.arrivals[i] for i in ids if i in reader.arrivals]
    latencies = [arrived - sent for sent, arrived in got]
    print_stages([reader.stamps[i] for i in ids if i in reader.stamps])
    print_loop_stages(loop.metrics.registry)
    span = max(a for _, a in got) - min(s for s, _ in got)
    if rate is None:
        print(f"    saturated: {len(got) / span:.1f}/s over the run, "
              f"{steady_rate([a for _, a in got]):.1f}/s steady (results 10-90 %)")  # fmt: skip
    return len(got), len(got) / span, latencies


def warm_up_broker(
    overrides: list[str], model: LoadedModel, images: list[Path], bootstrap: str, count: int = 600
) -> None:
    """Serve ``count`` requests, all at once and unmeasured, before the first measured load.

    A freshly started broker JIT-compiles its request path for its first minute or so: on this
    2-core host its CPU per message fell ~2x between the first and the third 10 s of a stream,
    CPU taken from the consumer under test. Without this the first loads (10/s, 50/s) measured
    the broker's warm-up as well.
    """
    start = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()):
        through_broker(overrides, model, images, None, count, bootstrap)
    print(f"broker warm-up: {count} requests in {time.monotonic() - start:.0f} s (not measured)",
          flush=True)  # fmt: skip


BROKER_PID: int | None = None  # the broker this bench started (its CPU is reported per load)


class CpuMeter:
    """CPU used per image while a load runs: this process (the consumer loop with its inference
    threads and Kafka clients, plus the bench's producer and reader), the decode workers, the
    broker; and how many of the host's cores were busy with anything."""

    def __init__(self, classifier) -> None:
        self.classifier = classifier
        self.start = self._sample()

    def _sample(self) -> dict[str, float]:
        workers = getattr(self.classifier.decoder, "pids", list)()
        idle = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        return {
            "wall": time.monotonic(),
            "process": cpu_seconds("self"),
            "workers": sum(cpu_seconds(p) for p in workers),
            "broker": cpu_seconds(BROKER_PID) if BROKER_PID else 0.0,
            "host_busy": (sum(map(int, idle)) - int(idle[3]) - int(idle[4]))
            / os.sysconf("SC_CLK_TCK"),
        }

    def report(self, images: int) -> None:
        end = self._sample()
        used = {k: end[k] - self.start[k] for k in end}
        per = {k: v / max(1, images) * 1000.0 for k, v in used.items()}
        print(f"    cpu ms/image: bench+consumer process {per['process']:.1f}, decode workers "
              f"{per['workers']:.1f}, broker {per['broker']:.1f}; host busy "
              f"{used['host_busy'] / used['wall']:.2f} of {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.1f}")  # fmt: skip


def print_stages(stamps: list[tuple[float, float, float, float]]) -> None:
    """Where the time goes: sent -> received by the consumer -> scored -> readable (ms)."""
    if not stamps:
        return
    t0 = min(s[0] for s in stamps)
    parts = np.asarray([(r - s, c - r, a - c, a - s) for s, r, c, a in stamps]) * 1000.0
    names = ("to consumer", "decode+infer", "deliver+read", "total")
    for name, column in zip(names, parts.T, strict=True):
        p50, p95, p99 = np.percentile(column, [50, 95, 99])
        print(f"    {name:>13}: p50 {p50:7.1f}  p95 {p95:7.1f}  p99 {p99:7.1f}  "
              f"max {column.max():7.1f}")  # fmt: skip
    worst = np.argsort(parts[:, 3])[-5:][::-1]
    for i in worst:
        q, w, d, t = parts[i]
        at = stamps[i][0] - t0
        print(f"    slow: at +{at:6.2f}s total {t:6.1f} = queue {q:6.1f} + work {w:6.1f} "
              f"+ deliver {d:6.1f}")  # fmt: skip


def print_loop_stages(registry) -> None:
    """The consumer's own per-batch stage times (harmscan_stage_seconds), warm-up included."""
    get = registry.get_sample_value
    batches = get("harmscan_batch_size_count") or 0.0
    if not batches:
        return
    parts = []
    for stage in ("poll", "decode_wait", "infer", "deliver", "commit"):
        total = get("harmscan_stage_seconds_sum", {"stage": stage}) or 0.0
        parts.append(f"{stage} {total / batches * 1000:.1f}")
    mean = (get("harmscan_batch_size_sum") or 0.0) / batches
    print(f"    loop: {batches:.0f} batches of {mean:.1f} on average; ms per batch: "
          + ", ".join(parts))  # fmt: skip


def steady_rate(arrivals: list[float]) -> float:
    """Results per second between the 10th and the 90th percentile of their arrivals.

    A short saturated run (``--quick``: ~4 s) pays the pipeline's fill (the first batches are
    small and not decoded ahead) and drain (the last batch's delivery) once; the ceiling loop
    pays neither. This rate leaves both out; results/span (the throughput column) keeps them.
    """
    ordered = sorted(arrivals)
    low, high = len(ordered) // 10, len(ordered) * 9 // 10
    if high - low < 2 or ordered[high] <= ordered[low]:
        return float("nan")
    return (high - low) / (ordered[high] - ordered[low])


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000.0 if values else float("nan")


def exit_on_sigterm() -> None:
    """Make SIGTERM (``timeout``, ``kill``) an exit that runs ``finally``: the broker stops."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def start_broker(state: Path):
    from stack.kafka import KafkaBroker
    from stack.process import free_ports

    port, controller_port = free_ports(2)
    broker = KafkaBroker(state_dir=state, port=port, controller_port=controller_port)
    broker.start(600)  # a busy shared host can take minutes
    return broker


def plot(rows: list[Row], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    everything = np.concatenate([np.asarray(r.latencies) for r in rows]) * 1000.0
    bins = np.geomspace(max(1.0, everything.min()), everything.max() * 1.01, 60)
    for row in rows:
        ms = np.asarray(row.latencies) * 1000.0
        label = f"{row.arch} {row.precision} {row.size}px @ {row.load}"
        ax.hist(ms, bins=bins, histtype="step", label=label)
    ax.set_xlabel("latency, request sent -> result received (ms)")
    ax.set_ylabel("requests")
    ax.set_xscale("log")
    ax.legend(fontsize=8)
    ax.set_title("harmscan serving latency through Kafka")
    fig.tight_layout()
    path = out / "serve_latency.png"
    fig.savefig(path, dpi=120)
    return path


def decode_compare(overrides, model, images, bootstrap, rounds: int, count: int) -> None:
    """Threads (before) against worker processes (after), alternating, same run."""
    global DECODE_IN_PROCESS
    settings = load_settings("ci", overrides, env={})
    found: dict[str, dict[str, list[float]]] = {}
    for round_ in range(rounds):
        for mode in ("threads", "processes"):
            DECODE_IN_PROCESS = mode == "threads"
            alone = ceiling(settings, model, images, 8)
            _n, stream, _lat = through_broker(overrides, model, images, None, count, bootstrap)
            found.setdefault(mode, {"ceiling": [], "stream": []})
            found[mode]["ceiling"].append(alone)
            found[mode]["stream"].append(stream)
            print(f"round {round_ + 1} {mode}: ceiling {alone:.1f}/s, saturation {stream:.1f}/s",
                  flush=True)  # fmt: skip
    print("\n| decode in | ceiling images/s (median) | saturation images/s (median) |")
    print("|---|---|---|")
    medians = {m: {k: float(np.median(v)) for k, v in f.items()} for m, f in found.items()}
    for mode, values in medians.items():
        print(f"| {mode} | {values['ceiling']:.1f} | {values['stream']:.1f} |")
    for key in ("ceiling", "stream"):
        ratio = medians["processes"][key] / medians["threads"][key]
        print(f"{key}: processes / threads = {ratio:.3f}")


def bench_topics(base: list[str]) -> list[str]:
    """``base`` plus fresh topic and group names (every load starts on empty topics)."""
    tag = uuid.uuid4().hex[:8]
    return [
        *base,
        f"kafka.requests_topic=bench-req-{tag}", f"kafka.results_topic=bench-res-{tag}",
        f"kafka.review_topic=bench-rev-{tag}", f"kafka.dead_letter_topic=bench-dlq-{tag}",
        f"kafka.group_id=bench-{tag}", "kafka.partitions=2",
    ]  # fmt: skip


def start_standalone(
    base: list[str], folder: Path, precision: str, count: int
) -> tuple[Settings, subprocess.Popen[str]]:
    """Start `bench/standalone_consumer.py` on the bench's topics for ``count`` requests (plus
    the warm-up's) and wait until it is ready. Returns its settings and the process."""
    from serving.topics import ensure_serving_topics

    overrides = bench_topics(base)
    settings = load_settings("ci", overrides, env={})
    ensure_serving_topics(settings)
    script = REPO / "bench" / "standalone_consumer.py"
    child = subprocess.Popen(
        [sys.executable, str(script), str(folder), precision, str(count + 4), *overrides],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    child.stdout.readline()  # ready
    return settings, child


def standalone(
    base: list[str], folder: Path, precision: str, images: list[Path], count: int, bootstrap: str
) -> dict[str, float]:
    """Saturated throughput and memory of a consumer in a process of its own (as ``harmscan
    serve`` runs: no torch, no bench threads beside it); `bench/standalone_consumer.py`."""
    import json

    from serving.producer import RequestProducer

    settings, child = start_standalone(base, folder, precision, count)
    try:
        assert child.stdout is not None
        reader = Reader(bootstrap, settings.kafka.results_topic)
        reader.start()
        producer = RequestProducer(settings)
        warm_up(producer, reader, images)
        broker_start = cpu_seconds(BROKER_PID) if BROKER_PID else 0.0
        ids = send_and_wait(producer, reader, images, count)
        broker_cpu = (cpu_seconds(BROKER_PID) if BROKER_PID else 0.0) - broker_start
        producer.close()
        reader.stop.set()
        reader.join(10)
        report = json.loads(child.stdout.readline() or "{}")
        child.wait(60)
    finally:
        if child.poll() is None:
            child.kill()
    got = [reader.arrivals[i] for i in ids if i in reader.arrivals]
    span = max(a for _, a in got) - min(s for s, _ in got)
    broker_ms = round(broker_cpu / max(1, len(ids)) * 1000, 2)
    found = {"throughput": len(got) / span, "results": len(got),
             "steady": round(steady_rate([a for _, a in got]), 1)}  # fmt: skip
    return {**found, "broker_cpu_ms_per_image": broker_ms, **report}


def layout_sweep(
    base: list[str],
    folder: Path,
    precision: str,
    images: list[Path],
    bootstrap: str,
    layouts: list[tuple[int, int, int, int]],
    rate: float,
    rounds: int,
) -> None:
    """The thread and process layouts side by side, in rounds (A B C ... A B C ...): per layout
    the ceiling, the saturated throughput through the broker and p99 at ``rate`` offered."""
    found: dict[tuple[int, int, int, int], dict[str, list[float]]] = {}
    for round_ in range(rounds):
        for layout in layouts:
            decode, infer, threads, batch = layout
            overrides = [
                *base,
                f"serving.decode_workers={decode}",
                f"serving.inference_workers={infer}",
                f"serving.intra_op_threads={threads}",
                f"serving.batch_size={batch}",
            ]
            model = load(folder, precision, threads, batch, infer)
            settings = load_settings("ci", overrides, env={})
            top = ceiling(settings, model, images, 5)
            _n, stream, _lat = through_broker(
                overrides, model, images, None, int(top * 4), bootstrap
            )
            _n, _tp, lat = through_broker(overrides, model, images, rate, int(rate * 6), bootstrap)
            figures = found.setdefault(layout, {"ceiling": [], "max": [], "p99": []})
            figures["ceiling"].append(top)
            figures["max"].append(stream)
            figures["p99"].append(percentile(lat, 99))
            print(f"round {round_ + 1} layout {layout}: ceiling {top:.1f}/s, saturated "
                  f"{stream:.1f}/s ({stream / top:.2f}x), p99 at {rate:.0f}/s "
                  f"{figures['p99'][-1]:.0f} ms", flush=True)  # fmt: skip
    print(f"\n| decode workers | inference workers | intra-op threads | batch | ceiling img/s | "
          f"saturated img/s | x ceiling | p99 ms at {rate:.0f}/s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for layout, figures in found.items():
        med = {k: float(np.median(v)) for k, v in figures.items()}
        print("| " + " | ".join(map(str, layout)) + f" | {med['ceiling']:.1f} | {med['max']:.1f} "
              f"| {med['max'] / med['ceiling']:.2f} | {med['p99']:.0f} |")  # fmt: skip
    print(f"(medians of {rounds} rounds)")


def _list_of(valid: tuple[str, ...]) -> Callable[[str], str]:
    """An argparse type: a comma-separated list whose items are all in ``valid``."""

    def check(text: str) -> str:
        unknown = [item for item in text.split(",") if item not in valid]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; valid: {', '.join(valid)}")
        return text

    return check


def _sizes(text: str) -> str:
    """``--image-sizes``: comma-separated input sizes of at least 32 px."""
    for item in text.split(","):
        if not item.strip().isdigit() or int(item) < 32:
            raise argparse.ArgumentTypeError(f"{item!r}: give sizes in px (>= 32), e.g. 224,160")
    return text


def _layouts(text: str) -> str:
    """``--layouts``: ``;``-separated layouts of 4 positive integers each."""
    for item in text.split(";"):
        parts = item.split(",")
        if len(parts) != 4 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
            raise argparse.ArgumentTypeError(
                f"{item!r}: give decode workers, inference workers, intra-op threads, batch "
                "(e.g. 2,2,1,16)"
            )
    return text


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, MobileNetV2 only")
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--archs", default="mobilenet_v2,resnet50", type=_list_of(ARCHS))
    # The layout defaults are the consumer's own (conf/sections/serving.py): the bench measures
    # them.
    layout = ServingSettings.model_fields
    parser.add_argument("--threads", type=int, default=layout["intra_op_threads"].default,
                        help="serving.intra_op_threads")  # fmt: skip
    parser.add_argument("--workers", type=int, default=layout["decode_workers"].default,
                        help="serving.decode_workers")  # fmt: skip
    parser.add_argument("--batch", type=int, default=layout["batch_size"].default,
                        help="serving.batch_size")  # fmt: skip
    parser.add_argument("--infer-workers", type=int, default=layout["inference_workers"].default,
                        help="serving.inference_workers")  # fmt: skip
    parser.add_argument(
        "--precisions", default="float,int8", type=_list_of(PRECISION_SETTINGS),
        help="served side by side",
    )  # fmt: skip
    parser.add_argument(
        "--image-sizes", default="224,160", type=_sizes,
        help="model input sizes served side by side (px, comma-separated): 160 is training's "
        "default (both demo modes; docs/image-size.md), 224 the default before; --layouts and "
        "--decode-compare use the first",
    )  # fmt: skip
    parser.add_argument("--no-broker", action="store_true", help="model-alone figures only")
    parser.add_argument(
        "--standalone", action="store_true",
        help="also the saturated load with the consumer in its own process (throughput, RSS)",
    )  # fmt: skip
    parser.add_argument("--decode-compare", action="store_true", help="threads vs processes")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --decode-compare")
    parser.add_argument(
        "--layouts",
        type=_layouts,
        help="compare layouts instead, e.g. '2,2,1,16;1,2,1,16' (decode workers, inference "
        "workers, intra-op threads, batch size each), in --rounds rounds",
    )
    parser.add_argument("--layout-rate", type=float, default=50.0, help="offered load of --layouts")
    return parser.parse_args()


def main() -> None:
    global BROKER_PID
    args = parse_args()
    exit_on_sigterm()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    images = make_images(work / "images", 64 if args.quick else 200)
    broker = None if args.bootstrap or args.no_broker else start_broker(work / "kafka")
    BROKER_PID = broker.process.pid() if broker else None
    bootstrap = args.bootstrap or (broker.bootstrap if broker else "127.0.0.1:9")
    overrides = [
        f"paths.root={work / 'harmscan'}", f"kafka.bootstrap_servers={bootstrap}",
        f"serving.allowed_roots=[{work / 'images'}]", "serving.metrics_port=null",
        f"serving.batch_size={args.batch}", f"serving.decode_workers={args.workers}",
        f"serving.intra_op_threads={args.threads}",
        f"serving.inference_workers={args.infer_workers}",
        "serving.poll_timeout_s=0.2",
    ]  # fmt: skip
    precision = args.precisions.split(",")[0]
    print(f"layout: {args.workers} decode worker(s), {args.infer_workers} inference run(s) x "
          f"{args.threads} intra-op thread(s), batch {args.batch}; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)  # fmt: skip
    try:
        if args.layouts or args.decode_compare:
            folder = work / "model-mobilenet_v2"
            make_bundle("mobilenet_v2", folder, images[:32], int(args.image_sizes.split(",")[0]))
            if args.layouts:
                layouts = [
                    tuple(int(x) for x in item.split(",")) for item in args.layouts.split(";")
                ]
                layout_sweep(overrides, folder, precision, images, bootstrap, layouts,
                             args.layout_rate, args.rounds)  # fmt: skip
            else:
                model = load(folder, precision, args.threads, args.batch, args.infer_workers)
                decode_compare(overrides, model, images, bootstrap, args.rounds, 600)
            return
        rows, figures, original, alone = side_by_side(args, work, overrides, images, bootstrap)
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)  # images, bundles, the broker's log (~35 MB)
    print_tables(rows, figures, original)
    print_standalone(alone, figures)
    if rows:
        print(f"latency histogram: {plot(rows, args.out)}")


def side_by_side(
    args: argparse.Namespace, work: Path, overrides: list[str], images: list[Path], bootstrap: str
) -> tuple[list[Row], dict[Key, dict[str, float]], dict[str, float], dict[Key, dict[str, float]]]:
    """Per architecture: the original way, then per input size and precision the model-alone
    figures, then the loads through the broker, sizes and precisions side by side load by load
    (then --standalone)."""
    settings = load_settings("ci", overrides, env={})
    archs = ["mobilenet_v2"] if args.quick else args.archs.split(",")
    sizes = [int(size) for size in args.image_sizes.split(",")]
    seconds = 5 if args.quick else 10
    rows: list[Row] = []
    figures: dict[Key, dict[str, float]] = {}
    original: dict[str, float] = {}
    alone: dict[Key, dict[str, float]] = {}
    for arch in archs:
        models: dict[Key, LoadedModel] = {}
        folders: dict[int, Path] = {}
        for size in sizes:
            folders[size] = folder = work / f"model-{arch}-{size}px"
            module = make_bundle(arch, folder, images[:32], size)
            for precision in args.precisions.split(","):
                models[arch, size, precision] = load(
                    folder, precision, args.threads, args.batch, args.infer_workers
                )
        original[arch] = original_way(module, images, seconds)
        print(f"{arch}: original way (eager torch, one image at a time, 224 px) "
              f"{original[arch]:.1f} images/s", flush=True)  # fmt: skip
        for key, model in models.items():
            figures[key] = {
                "infer": infer_only(model, images, args.batch, seconds),
                "ceiling": ceiling(settings, model, images, seconds),
            }
            print(f"{name(key)}: infer only {figures[key]['infer']:.1f}, "
                  f"ceiling {figures[key]['ceiling']:.1f} images/s", flush=True)  # fmt: skip
        fast = arch == "mobilenet_v2"
        loads: list[float | None] = [10.0, 50.0, 100.0, None] if fast else [2.0, 5.0, None]
        if not args.no_broker and not rows:
            warm_up_broker(overrides, next(iter(models.values())), images, bootstrap)
        for rate in [] if args.no_broker else loads:
            for key, model in models.items():  # side by side, load by load
                rows.append(serve_load(args, settings, overrides, key, model, figures[key],
                                       images, rate, bootstrap))  # fmt: skip
        for key in models if args.standalone and not args.no_broker else []:
            top = figures[key]["ceiling"]
            alone[key] = found = standalone(
                overrides, folders[key[1]], key[2], images, int(top * 6), bootstrap
            )
            print(f"  {name(key)} own process: {found}", flush=True)
    return rows, figures, original, alone


def name(key: Key) -> str:
    """``mobilenet_v2 int8 160px``."""
    arch, size, precision = key
    return f"{arch} {precision} {size}px"


def serve_load(
    args: argparse.Namespace,
    settings: Settings,
    overrides: list[str],
    key: Key,
    model: LoadedModel,
    figures: dict[str, float],
    images: list[Path],
    rate: float | None,
    bootstrap: str,
) -> Row:
    """One load through the broker for one served model (saturated: after its ceiling again)."""
    count = int((rate or figures["ceiling"]) * (4 if args.quick else 10))
    if rate is None:  # the ceiling again, just before: the host changes by the minute
        seconds = 5 if args.quick else 10
        figures["ceiling_adjacent"] = adjacent = ceiling(settings, model, images, seconds)
        print(f"  {name(key)} ceiling just before the saturated run: {adjacent:.1f}/s",
              flush=True)  # fmt: skip
    n, throughput, lat = through_broker(overrides, model, images, rate, count, bootstrap)
    label = f"{rate:.0f}/s" if rate else "max"
    print(f"  {name(key)} offered {label}: {n} results, {throughput:.1f}/s", flush=True)
    arch, size, precision = key
    return Row(arch, size, precision, label, n, throughput, percentile(lat, 50),
               percentile(lat, 95), percentile(lat, 99), lat)  # fmt: skip


def print_standalone(
    alone: dict[Key, dict[str, float]], figures: dict[Key, dict[str, float]]
) -> None:
    """The --standalone table: a consumer in its own process, saturated, and its memory."""
    if not alone:
        return
    print("\n| arch | px | precision | saturated img/s, consumer in its own process | x ceiling "
          "| steady img/s | x ceiling | consumer peak RSS MB | decode workers RSS MB "
          "| full GCs (longest ms) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (arch, size, precision), found in alone.items():
        top = figures[arch, size, precision]["ceiling"]
        print(f"| {arch} | {size} | {precision} | {found['throughput']:.1f} | "
              f"{found['throughput'] / top:.2f} | {found['steady']:.1f} | "
              f"{found['steady'] / top:.2f} | {found.get('peak_rss_mb', 'n/a')} | "
              f"{found.get('decode_workers_rss_mb', 'n/a')} | "
              f"{found.get('gc_full_collections', 'n/a')} "
              f"({found.get('gc_full_max_ms', 'n/a')}) |")  # fmt: skip


def print_tables(
    rows: list[Row], figures: dict[Key, dict[str, float]], original: dict[str, float]
) -> None:
    """The README's tables: per load, size and precision, then the ceilings against the original
    way (224 px) and against float at the same size and the first size's float."""
    print()
    print("| arch | px | precision | offered | results | images/s | x ceiling | x original | "
          "p50 ms | p95 ms | p99 ms |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        fig = figures[r.arch, r.size, r.precision]
        top = fig.get("ceiling_adjacent", fig["ceiling"]) if r.load == "max" else fig["ceiling"]
        print(f"| {r.arch} | {r.size} | {r.precision} | {r.load} | {r.sent} | "
              f"{r.throughput:.1f} | {r.throughput / top:.2f} | "
              f"{r.throughput / original[r.arch]:.2f} | {r.p50:.0f} | {r.p95:.0f} | "
              f"{r.p99:.0f} |")  # fmt: skip
    print()
    first = next(iter(figures))
    print("| arch | px | precision | infer only img/s | ceiling img/s | ceiling x original | "
          f"ceiling x float, same px | ceiling x float {first[1]} px |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for (arch, size, precision), fig in figures.items():
        same = figures.get((arch, size, "float"), fig)["ceiling"]
        base = figures.get((arch, first[1], "float"), fig)["ceiling"]
        print(f"| {arch} | {size} | {precision} | {fig['infer']:.1f} | {fig['ceiling']:.1f} | "
              f"{fig['ceiling'] / original[arch]:.2f} | {fig['ceiling'] / same:.2f} | "
              f"{fig['ceiling'] / base:.2f} |")  # fmt: skip
    for arch, value in original.items():
        print(f"original way {arch}: {value:.1f} images/s (eager torch, one image at a time, "
              "224 px)")  # fmt: skip
    print_saturated(rows)


def print_saturated(rows: list[Row]) -> None:
    """Saturated throughput and p99 at the highest fixed load, each against the first row's
    served model (the first size, the first precision): the ratios this bench is read for."""
    saturated = {(r.arch, r.size, r.precision): r for r in rows if r.load == "max"}
    fixed = [r for r in rows if r.load != "max"]
    if not saturated or not fixed:
        return
    top_load = max(fixed, key=lambda r: float(r.load.removesuffix("/s"))).load
    at_load = {(r.arch, r.size, r.precision): r for r in fixed if r.load == top_load}
    first = next(iter(saturated))
    print(f"\n| arch | px | precision | saturated img/s | x {name(first)} | p99 ms at {top_load} "
          f"| x {name(first)} |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for key, row in saturated.items():
        p99 = at_load[key].p99 if key in at_load else float("nan")
        base = at_load[first].p99 if first in at_load else float("nan")
        print(f"| {key[0]} | {key[1]} | {key[2]} | {row.throughput:.1f} | "
              f"{row.throughput / saturated[first].throughput:.2f} | {p99:.0f} | "
              f"{p99 / base:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
