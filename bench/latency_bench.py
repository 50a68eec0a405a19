"""Latency A/B through Kafka: variants of the serving settings side by side, in one run.

Every variant serves the same offered loads, interleaved (load by load: A B A B ... for
``--rounds`` rounds), on one broker, one model bundle (random-weight MobileNetV2, the int8 graph by
default) and the same 1024x768 JPEGs as `serve_bench.py`. A variant is a name and settings
overrides (``--set`` syntax), e.g.::

    .venv/bin/python bench/latency_bench.py \\
        --variants 'before:serving.decode_ahead=always;after:' --loads 50,100,max --rounds 3

For every load it prints, per variant, where a request's time goes — measured by tracing the
loop's own steps (`TracedConsumer`), not inferred: waiting to be polled (the loop busy with the
batch before), polled to scored (decoding, and under pipelining the previous batch's turn),
scored to delivered, delivered to read by the bench's reader — and the loop's step times
(poll, start: journal + submit, decode wait, infer, deliver, commit, end: journal + report).
A variant may also hold ``bench.*`` switches for what is not a setting (``bench.journal=rename``,
``bench.linger_ms=0``, ``bench.process=own``: see `serve_load`; ``bench.image_size=144``: the
variant's model bundle at that input size, see `bundles`). Then a table of medians per
variant and their ratios to the first variant, with the CPU per image of the consumer process, its
decode workers and the broker, and each variant's ratios to the first round by round (the inputs
of an adoption rule: docs/serving-measurements.md). Absolute numbers
depend on the host (other jobs on it): read the ratios, and the load average printed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.standalone_consumer import cpu_seconds  # noqa: E402
from conf.loader import load_settings  # noqa: E402
from serving.batches import InFlight  # noqa: E402
from serving.consumer import ServingConsumer  # noqa: E402
from serving.graphs import PRECISION_SETTINGS  # noqa: E402
from serving.model import LoadedModel  # noqa: E402
from serving.poison import Journal, PoisonGuard  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
import serve_bench  # noqa: E402


@dataclass
class Step:
    """One batch's trip through the loop (time.time() stamps)."""

    ids: list[str]
    polled: float  # the poll that returned it ended
    poll_s: float  # time spent inside that poll
    started: float  # journalled and submitted
    finish_from: float = 0.0  # its turn came (the loop's BatchHandler.send got it)
    stages: dict[str, float] = field(default_factory=dict)
    finished: float = 0.0  # committed, journalled and reported


class TracedConsumer(ServingConsumer):
    """The serving loop, unchanged, with a stamp at each step boundary."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.steps: list[Step] = []
        self._last_poll = (0.0, 0.0)
        self.journal_s: list[float] = []  # each write of the poison guard's journal
        for name in ("begin", "done"):
            setattr(self.guard, name, self._timed(getattr(self.guard, name)))
        self._handler_send, self._handler_complete = self.batches.send, self.batches.complete
        self.batches.send = self._traced_send  # type: ignore[method-assign]
        self.batches.complete = self._traced_complete  # type: ignore[method-assign]

    def _timed(self, write):  # type: ignore[no-untyped-def]
        def timed(batch) -> None:  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            write(batch)
            self.journal_s.append(time.perf_counter() - start)

        return timed

    def _poll_batch(self, wait: bool):  # type: ignore[no-untyped-def]
        start = time.time()
        batch = super()._poll_batch(wait)
        self._last_poll = (time.time(), time.time() - start)
        return batch

    def _start(self, batch):  # type: ignore[no-untyped-def]
        inflight = super()._start(batch)
        polled, poll_s = self._last_poll
        ids = [(m.key() or b"").decode() for m in batch]
        inflight.trace = Step(ids, polled, poll_s, time.time())  # type: ignore[attr-defined]
        return inflight

    def _traced_send(self, inflight: InFlight, model) -> None:  # type: ignore[no-untyped-def]
        step: Step | None = getattr(inflight, "trace", None)
        if step is not None:
            step.finish_from = time.time()
        self._handler_send(inflight, model)

    def _traced_complete(self, inflight: InFlight) -> None:
        self._handler_complete(inflight)
        step: Step | None = getattr(inflight, "trace", None)
        if step is not None:
            step.finished = time.time()
            step.stages = dict(inflight.stages)
            self.steps.append(step)


@dataclass
class Run:
    """One load served by one variant."""

    variant: str
    load: str
    results: int
    throughput: float
    latencies: list[float]
    parts: dict[str, list[float]]  # per request, ms
    loop: dict[str, float]  # per batch, mean ms
    batch_mean: float
    cpu: dict[str, float]

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000.0 if self.latencies else np.nan


def serve_load(
    overrides: list[str],
    model: LoadedModel,
    images: list[Path],
    rate: float | None,
    count: int,
    bootstrap: str,
    bench: dict[str, str],
) -> tuple[list[str], serve_bench.Reader, TracedConsumer, dict[str, float]]:
    """Serve ``count`` requests at ``rate``/s through a traced loop; (ids, reader, loop, cpu).

    ``bench`` holds the variant's ``bench.*`` switches: ``linger_ms`` (of the results producer),
    ``journal=rename`` (the poison guard's journal written as before: temporary file + rename);
    ``process=own`` runs the consumer in its own process instead (`serve_load_own_process`).
    """
    from confluent_kafka import Producer

    from serving.producer import RequestProducer
    from serving.service import make_consumer, make_producer
    from serving.topics import ensure_serving_topics

    settings = load_settings("ci", serve_bench.bench_topics(overrides), env={})
    ensure_serving_topics(settings)
    stop = threading.Event()
    classifier = serve_bench.make_classifier(settings)
    producer_ = make_producer(settings)
    if "linger_ms" in bench:
        producer_ = Producer({
            **settings.kafka.client_config(), "enable.idempotence": True, "acks": "all",
            "linger.ms": int(bench["linger_ms"]),
            "message.timeout.ms": int(settings.serving.delivery_timeout_s * 1000),
        })  # fmt: skip
    loop = TracedConsumer(
        settings, model, classifier, make_consumer(settings), producer_, stop_event=stop
    )
    if bench.get("journal") == "rename":  # the journal as it was written before: write + rename
        for journal in loop.guard._journals.values():
            journal.save = partial(save_by_rename, journal)  # type: ignore[method-assign]
        loop.guard._journal = partial(renaming_journal, loop.guard)  # type: ignore[method-assign]
    thread = threading.Thread(target=loop.run, daemon=True)
    reader = serve_bench.Reader(bootstrap, settings.kafka.results_topic)
    reader.start()
    thread.start()
    producer = RequestProducer(settings, rate=rate)
    serve_bench.warm_up(producer, reader, images)
    loop.steps.clear()
    loop.journal_s.clear()
    meter = CpuSampler(classifier)
    ids = serve_bench.send_and_wait(producer, reader, images, count)
    cpu = meter.per_image(len(ids))
    producer.close()
    stop.set()
    reader.stop.set()
    thread.join(30)
    reader.join(10)
    classifier.close()
    return ids, reader, loop, cpu


@dataclass
class Untraced:
    """What `analyse` reads of a loop that ran in another process: nothing traced."""

    steps: list[Step] = field(default_factory=list)
    journal_s: list[float] = field(default_factory=list)


def serve_load_own_process(
    overrides: list[str],
    folder: Path,
    precision: str,
    images: list[Path],
    rate: float | None,
    count: int,
    bootstrap: str,
) -> tuple[list[str], serve_bench.Reader, Untraced, dict[str, float]]:
    """As `serve_load`, the consumer in a process of its own (``bench.process=own``).

    `bench/standalone_consumer.py`, as ``harmscan serve`` runs: no bench threads (producer,
    reader) and no torch in its interpreter. Only the stamps in its results split the time.
    """
    from serving.producer import RequestProducer

    settings, child = serve_bench.start_standalone(overrides, folder, precision, count)
    try:
        reader = serve_bench.Reader(bootstrap, settings.kafka.results_topic)
        reader.start()
        producer = RequestProducer(settings, rate=rate)
        serve_bench.warm_up(producer, reader, images)
        cpu_before = cpu_seconds(child.pid)
        meter = CpuSampler(SimpleNamespace(decoder=None))
        ids = serve_bench.send_and_wait(producer, reader, images, count)
        cpu = meter.per_image(len(ids))
        cpu["consumer"] = (cpu_seconds(child.pid) - cpu_before) / len(ids) * 1000
        producer.close()
        reader.stop.set()
        reader.join(10)
        assert child.stdout is not None
        report = json.loads(child.stdout.readline() or "{}")
        cpu["workers"] = report.get("workers_cpu_ms_per_image", float("nan"))
        cpu["gc_full"] = report.get("gc_full_collections", 0)
        cpu["gc_full_max_ms"] = report.get("gc_full_max_ms", 0.0)
        child.wait(60)
    finally:
        if child.poll() is None:
            child.kill()
    return ids, reader, Untraced(), cpu


def save_by_rename(journal: Journal) -> None:
    """`Journal.save` before it wrote in place: a temporary file renamed over the journal."""
    journal.path.parent.mkdir(parents=True, exist_ok=True)
    body = {"inflight": sorted(journal.inflight), "strikes": journal.strikes}
    temporary = journal.path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(body))
    os.replace(temporary, journal.path)


def renaming_journal(guard: PoisonGuard, topic: str, partition: int) -> Journal:
    """`PoisonGuard._journal` whose journals save by rename (``bench.journal=rename``)."""
    fresh = (topic, partition) not in guard._journals
    journal = PoisonGuard._journal(guard, topic, partition)
    if fresh:
        journal.save = partial(save_by_rename, journal)  # type: ignore[method-assign]
    return journal


class CpuSampler(serve_bench.CpuMeter):
    """`serve_bench.CpuMeter`, returning the figures instead of printing them."""

    def per_image(self, images: int) -> dict[str, float]:
        end = self._sample()
        used = {k: end[k] - self.start[k] for k in end}
        per = {k: v / max(1, images) * 1000.0 for k, v in used.items()}
        per["host_busy"] = used["host_busy"] / used["wall"]
        per["load"] = os.getloadavg()[0]
        return per


def analyse(
    variant: str, load: str, ids: list[str], reader: serve_bench.Reader, loop: TracedConsumer,
    cpu: dict[str, float],
) -> Run:  # fmt: skip
    """Per request: sent -> polled -> its turn -> scored -> delivered -> read (ms)."""
    by_id = {i: step for step in loop.steps for i in step.ids}
    parts: dict[str, list[float]] = {
        k: [] for k in ("to poll", "polled to turn", "decode wait", "infer", "deliver", "commit",
                        "to read", "total")
    }  # fmt: skip
    latencies = []
    for request in ids:
        stamps, step = reader.stamps.get(request), by_id.get(request)
        if stamps is None:
            continue
        sent, received, completed, read = stamps
        latencies.append(read - sent)
        if step is None:  # a consumer in its own process: the stamps in its results only
            for name, value in (
                ("received", received - sent),
                ("scored", completed - received),
                ("delivered+read", read - completed),
                ("total", read - sent),
            ):
                parts.setdefault(name, []).append(value)  # fmt: skip
            continue
        st = step.stages
        delivered = step.finish_from + st.get("decode_wait", 0) + st.get("infer", 0)
        delivered += st.get("deliver", 0)
        parts["to poll"].append(step.polled - sent)
        parts["polled to turn"].append(step.finish_from - step.polled)
        parts["decode wait"].append(st.get("decode_wait", 0))
        parts["infer"].append(st.get("infer", 0))
        parts["deliver"].append(st.get("deliver", 0))
        parts["commit"].append(st.get("commit", 0))
        parts["to read"].append(read - delivered)
        parts["total"].append(read - sent)
    got = [reader.arrivals[i] for i in ids if i in reader.arrivals]
    span = max(a for _, a in got) - min(s for s, _ in got) if got else float("nan")
    steps = loop.steps
    loop_ms: dict[str, float] = {}
    if steps:
        loop_ms["poll"] = float(np.mean([s.poll_s for s in steps])) * 1000
        loop_ms["start"] = float(np.mean([s.started - s.polled for s in steps])) * 1000
        for stage in ("decode_wait", "infer", "deliver", "commit"):
            loop_ms[stage] = float(np.mean([s.stages.get(stage, 0) for s in steps])) * 1000
        tail = [s.finished - s.finish_from - sum(v for k, v in s.stages.items() if k != "poll")
                for s in steps]  # fmt: skip
        loop_ms["end"] = float(np.mean(tail)) * 1000
        writes = loop.journal_s[-2 * len(steps) :]
        loop_ms["(journal write)"] = float(np.mean(writes)) * 1000 if writes else 0.0
    return Run(
        variant, load, len(got), len(got) / span if got else 0.0, latencies,
        {k: [v * 1000 for v in vs] for k, vs in parts.items()}, loop_ms,
        float(np.mean([len(s.ids) for s in steps])) if steps else 0.0, cpu,
    )  # fmt: skip


def print_run(run: Run) -> None:
    """Where the time went for one variant at one load."""
    print(f"  [{run.variant} @ {run.load}] {run.results} results, {run.throughput:.1f}/s, "
          f"p50 {run.p(50):.0f} p95 {run.p(95):.0f} p99 {run.p(99):.0f} ms; batches of "
          f"{run.batch_mean:.1f}; load average {run.cpu.get('load', 0):.1f}",
          flush=True)  # fmt: skip
    for name, values in run.parts.items():
        if values:
            p50, p99 = np.percentile(values, [50, 99])
            print(f"      {name:>15}: mean {np.mean(values):6.1f}  p50 {p50:6.1f}  p99 {p99:6.1f}")
    print("      loop ms per batch: " + ", ".join(f"{k} {v:.1f}" for k, v in run.loop.items()))
    c = run.cpu
    if "consumer" in c:
        print(f"      cpu ms/image: consumer process {c['consumer']:.1f}, its decode workers "
              f"{c.get('workers', float('nan')):.1f}, bench process "
              f"{c.get('process', 0):.1f}, broker {c.get('broker', 0):.1f}; host busy "
              f"{c.get('host_busy', 0):.2f} cores; full GCs {c.get('gc_full', 0):.0f} (longest "
              f"{c.get('gc_full_max_ms', 0):.1f} ms)", flush=True)  # fmt: skip
        return
    print(f"      cpu ms/image: bench+consumer {c.get('process', 0):.1f}, decode workers "
          f"{c.get('workers', 0):.1f}, broker {c.get('broker', 0):.1f}; host busy "
          f"{c.get('host_busy', 0):.2f} cores", flush=True)  # fmt: skip


def summary(runs: list[Run], variants: list[str]) -> None:
    """Medians over rounds per (load, variant) and ratios to the first variant; the CPU per image
    of the consumer process, its decode workers (own process only) and the broker."""
    print("\n| load | variant | rounds | images/s | x first | p50 ms | p95 ms | p99 ms "
          "| p99 x first | batch | cpu ms/img consumer, workers, broker | load avg |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    loads = list(dict.fromkeys(r.load for r in runs))
    for load in loads:
        base_p99 = base_tp = None
        for variant in variants:
            mine = [r for r in runs if r.load == load and r.variant == variant]
            if not mine:
                continue
            med = {
                "tp": float(np.median([r.throughput for r in mine])),
                "p50": float(np.median([r.p(50) for r in mine])),
                "p95": float(np.median([r.p(95) for r in mine])),
                "p99": float(np.median([r.p(99) for r in mine])),
                "batch": float(np.median([r.batch_mean for r in mine])),
                "load": float(np.median([r.cpu.get("load", 0) for r in mine])),
            }
            # In-process runs count the consumer in the bench's process.
            cpu = [
                median_of([r.cpu.get(key, r.cpu.get("process", np.nan)) if key == "consumer"
                           else r.cpu.get(key, np.nan) for r in mine])
                for key in ("consumer", "workers", "broker")
            ]  # fmt: skip
            base_p99, base_tp = base_p99 or med["p99"], base_tp or med["tp"]
            print(f"| {load} | {variant} | {len(mine)} | {med['tp']:.1f} | "
                  f"{med['tp'] / base_tp:.3f} | {med['p50']:.0f} | {med['p95']:.0f} | "
                  f"{med['p99']:.0f} | {med['p99'] / base_p99:.2f} | {med['batch']:.1f} | "
                  f"{cpu[0]:.2f}, {cpu[1]:.2f}, {cpu[2]:.2f} | {med['load']:.1f} |")  # fmt: skip
    print(
        "(medians over rounds; throughput at a fixed offered load is the offered load when "
        "the loop keeps up)"
    )
    ratios(runs, variants)


def median_of(values: list[float]) -> float:
    """The median of the values that are numbers (nan when none is)."""
    numbers = [v for v in values if not np.isnan(v)]
    return float(np.median(numbers)) if numbers else float("nan")


def ratios(runs: list[Run], variants: list[str]) -> None:
    """Per load, each variant's saturated throughput and p99 against the first variant's in the
    same round (rounds alternate the order, so each pair ran minutes apart at most)."""
    first = variants[0]
    for load in dict.fromkeys(r.load for r in runs):
        base = dict(enumerate(r for r in runs if r.load == load and r.variant == first))
        for variant in variants[1:]:
            mine = [r for r in runs if r.load == load and r.variant == variant]
            pairs = [(r, base[i]) for i, r in enumerate(mine) if i in base]
            if not pairs:
                continue
            tp = [r.throughput / b.throughput for r, b in pairs]
            p99 = [r.p(99) / b.p(99) for r, b in pairs]
            wins = sum(t > 1 for t in tp)
            print(f"{load} {variant} / {first}, round by round: images/s "
                  + " ".join(f"{t:.3f}" for t in tp) + f" (median {np.median(tp):.3f}, more in "
                  f"{wins} of {len(tp)}); p99 " + " ".join(f"{p:.2f}" for p in p99)
                  + f" (median {np.median(p99):.2f})")  # fmt: skip


def parse_variants(text: str) -> dict[str, list[str]]:
    """``'a:x.y=1,x.z=2;b:'`` -> {"a": ["x.y=1", "x.z=2"], "b": []} (``bench.*`` included)."""
    variants: dict[str, list[str]] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, _, sets = item.partition(":")
        variants[name.strip()] = [s.strip() for s in sets.split(",") if s.strip()]
    return variants


def settings_of(sets: list[str]) -> list[str]:
    """The settings overrides of a variant (its ``bench.*`` switches left out)."""
    return [s for s in sets if not s.startswith("bench.")]


def bench_of(sets: list[str]) -> dict[str, str]:
    """The ``bench.*`` switches of a variant, without the prefix."""
    pairs = (s.removeprefix("bench.").split("=", 1) for s in sets if s.startswith("bench."))
    return dict(pairs)  # type: ignore[arg-type]


def bundles(
    variants: dict[str, list[str]], image_size: int, work: Path, calibration: list[Path]
) -> dict[str, Path]:
    """Each variant's model bundle: one per input size (``bench.image_size``, else
    ``image_size``), so that sizes compare side by side in one run."""
    sizes = {name: int(bench_of(sets).get("image_size", image_size))
             for name, sets in variants.items()}  # fmt: skip
    folders = {size: work / f"model-mobilenet_v2-{size}" for size in set(sizes.values())}
    for size, folder in sorted(folders.items()):
        serve_bench.make_bundle("mobilenet_v2", folder, calibration, size)
    return {name: folders[size] for name, size in sizes.items()}


def of_ceiling(load: str) -> bool:
    """A load given as a fraction of the round's ceiling (``0.6x``; ``max`` is not one)."""
    return load != "max" and load.endswith("x")


def rate_of(load: str, ceiling: float | None) -> float | None:
    """``"100"`` -> 100/s, ``"0.6x"`` -> 0.6 x the round's ceiling, ``"max"`` -> None."""
    if load == "max":
        return None
    if of_ceiling(load):
        assert ceiling is not None
        return float(load[:-1]) * ceiling
    return float(load)


def loads_arg(text: str) -> str:
    """``--loads``, checked before anything starts: images/s, ``0.6x`` of the ceiling, or max."""
    for load in text.split(","):
        try:
            if load != "max" and float(load.removesuffix("x")) <= 0:
                raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{load!r} is not a load: give images/s (100), a fraction of the ceiling (0.6x) "
                "or max"
            ) from None
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="defaults:", help="'name:a.b=1,c.d=2;name2:...'")
    parser.add_argument(
        "--loads", default="50,100,max", type=loads_arg,
        help="offered images/s, a fraction of the round's ceiling (0.6x), or max",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, default=6.0, help="of requests per fixed load")
    parser.add_argument("--max-count", type=int, default=600, help="requests of the max load")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--warm-up", type=int, default=600, help="requests served first, unmeasured (0: none)"
    )
    parser.add_argument("--precision", default="int8", choices=PRECISION_SETTINGS)
    parser.add_argument(
        "--image-size", type=int, default=224,
        help="the model's input size (px): 224 is training's default, 160 the quick demo's",
    )  # fmt: skip
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--quiet-runs", action="store_true", help="only the summary table")
    args = parser.parse_args()
    serve_bench.exit_on_sigterm()
    variants = parse_variants(args.variants)
    work = Path(tempfile.mkdtemp(prefix="latency-bench-"))
    images = serve_bench.make_images(work / "images", 64)
    broker = None if args.bootstrap else serve_bench.start_broker(work / "kafka")
    serve_bench.BROKER_PID = broker.process.pid() if broker else None
    bootstrap = args.bootstrap or broker.bootstrap
    base = [
        f"paths.root={work / 'harmscan'}", f"kafka.bootstrap_servers={bootstrap}",
        f"serving.allowed_roots=[{work / 'images'}]", "serving.metrics_port=null",
        "serving.poll_timeout_s=0.2",
    ]  # fmt: skip
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start; "
          f"variants {variants}", flush=True)  # fmt: skip
    runs: list[Run] = []
    try:
        folders = bundles(variants, args.image_size, work, images[:32])
        models: dict[str, LoadedModel] = {}
        for name, sets in variants.items():
            serving = load_settings("ci", [*base, *settings_of(sets)], env={}).serving
            models[name] = serve_bench.load(
                folders[name], args.precision, serving.intra_op_threads, serving.batch_size,
                serving.inference_workers,
            )  # fmt: skip
        first = next(iter(variants))
        if args.warm_up:
            # A fresh broker JIT-compiles for its first minute or so: measured on this host, its
            # CPU per message fell ~2x between the first and the third 10 s of a stream.
            start = time.monotonic()
            overrides = [*base, *settings_of(variants[first])]
            serve_load(overrides, models[first], images, None, args.warm_up, bootstrap, {})
            print(f"warm-up: {args.warm_up} requests in {time.monotonic() - start:.0f} s, "
                  "not measured", flush=True)  # fmt: skip
        for round_ in range(args.rounds):
            top = None
            if any(of_ceiling(load) for load in args.loads.split(",")):
                settings = load_settings("ci", [*base, *settings_of(variants[first])], env={})
                top = serve_bench.ceiling(settings, models[first], images, 4)
                print(f"round {round_ + 1}: ceiling {top:.1f} images/s ({first}), load average "
                      f"{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
            for load in args.loads.split(","):
                rate = rate_of(load, top)
                count = args.max_count if rate is None else int(rate * args.seconds)
                label = "max" if rate is None else load if of_ceiling(load) else f"{rate:.0f}/s"
                order = list(variants) if round_ % 2 == 0 else list(variants)[::-1]
                for name in order:
                    overrides = [*base, *settings_of(variants[name])]
                    switches = bench_of(variants[name])
                    if switches.get("process") == "own":
                        traced = serve_load_own_process(
                            overrides, folders[name], args.precision, images, rate, count,
                            bootstrap,
                        )  # fmt: skip
                    else:
                        traced = serve_load(
                            overrides, models[name], images, rate, count, bootstrap, switches
                        )
                    run = analyse(name, label, *traced)  # type: ignore[arg-type]
                    del traced  # the load's loop, Kafka clients and reader: gone before the next
                    gc.collect()
                    runs.append(run)
                    if not args.quiet_runs:
                        print(f"round {round_ + 1}", end="")
                        print_run(run)
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)  # images, bundles, the broker's log (~35 MB)
    summary(runs, list(variants))


if __name__ == "__main__":
    main()
