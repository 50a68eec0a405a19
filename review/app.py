"""The reviewers' web page: a login, the queue, one image at a time, three keys.

Server-rendered (Jinja2), no JavaScript build: a few inline lines map the keys h / s / k to the
harmful / safe / skip buttons. Every POST carries the session's CSRF token and the session cookie
is signed, HttpOnly and SameSite=Strict. A decision is answered only after the decisions topic
acknowledged it (`review.kafka.DecisionWriter`); then the item is marked decided in the store and
the feed is asked to commit the review topic's new position.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from harmscan.decisions import VERDICTS, Decision
from harmscan.imagepolicy import DEFAULT_MAX_PIXELS
from review.auth import Login
from review.images import ImageChanged, read_image, scored_bytes
from review.metrics import ReviewMetrics
from review.store import ClaimLost, Item, ReviewStore
from serving.inputs import InputReader, InputRejected, SourceUnavailable
from serving.schema import log_safe

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM_BYTES = 4096
# The only texts the page's notice box shows, chosen by key (``/?notice=<key>``, from
# `ClaimLost.reason`): never text from the URL, which anyone can put in a link.
NOTICES: dict[str, str] = {
    "unknown": "That image is not in the queue.",
    "decided": "That image was decided already; here is the next one.",
    "claimed": "That image is claimed by another reviewer now; here is yours.",
    "deciding": "That image is being decided already; a second press counts once.",
    "stale": "That page was out of date, so nothing was done; here it is again.",
}
# The login page's messages, by key likewise (``/login?notice=<key>``).
LOGIN_NOTICES: dict[str, str] = {
    "expired": "Your session ended, so nothing was done; log in again.",
}


class StaleForm(Exception):
    """A form whose CSRF token is not this session's: an old page, or a session that ended."""


class Writer(Protocol):
    """What the app needs of the decisions writer."""

    def write(self, decision: Decision) -> None: ...


@dataclass
class ReviewContext:
    """Everything the page works with, built by the caller (the service or a test)."""

    store: ReviewStore
    writer: Writer
    reader: InputReader
    login: Login
    metrics: ReviewMetrics
    session_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    session_max_age_s: int = 8 * 3600
    on_decided: Any = None  # called after each recorded decision (the feed's commit request)
    problem: Callable[[], str | None] = lambda: None  # why the app is unhealthy (the feed's)
    max_pixels: int = DEFAULT_MAX_PIXELS  # a TIFF is decoded to be shown (serving.max_pixels)


def create_app(ctx: ReviewContext) -> FastAPI:
    """The FastAPI app of the review page."""
    app = FastAPI(title="harmscan review", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(
        SessionMiddleware,
        secret_key=ctx.session_secret,
        session_cookie="harmscan_review",
        max_age=ctx.session_max_age_s,
        same_site="strict",
    )
    templates = Jinja2Templates(directory=str(TEMPLATES))

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
            "script-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        )
        # Pages carry the reviewer's name, source paths and the item: never kept in a cache
        # (the back button after logging out, a shared machine). Images set their own.
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    _login_routes(app, ctx, templates)
    _queue_routes(app, ctx, templates)
    _decide_route(app, ctx)
    _image_routes(app, ctx)
    return app


def _login_routes(app: FastAPI, ctx: ReviewContext, templates: Jinja2Templates) -> None:
    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> Response:
        notice = LOGIN_NOTICES.get(request.query_params.get("notice", ""))
        context = {"csrf": _csrf(request), "mode": ctx.login.mode, "error": notice}
        return templates.TemplateResponse(request, "login.html", context)

    @app.exception_handler(StaleForm)
    async def stale_form(request: Request, _exc: StaleForm) -> Response:
        # Nothing was done; the reviewer gets a page again, not a bare 403: the login page
        # when the session has ended (an expired cookie), else the queue.
        if request.url.path == "/login" or _reviewer(request, ctx) is None:
            return RedirectResponse("/login?notice=expired", status_code=303)
        return _back({"notice": "stale"})

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await _form(request)
        reviewer = ctx.login.check(form.get("name", ""), form.get("secret", ""))
        if reviewer is None:
            logger.warning("refused a login as %r", form.get("name", "")[:64])
            context = {"csrf": _csrf(request), "mode": ctx.login.mode, "error": "login refused"}
            return templates.TemplateResponse(request, "login.html", context, status_code=401)
        request.session.clear()
        request.session.update(
            {
                "reviewer": reviewer,
                "csrf": secrets.token_urlsafe(24),
                "sid": secrets.token_urlsafe(18),
                "since": ctx.store.clock(),
            }
        )
        return RedirectResponse("/", status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await _form(request)
        sid, since = request.session.get("sid"), request.session.get("since")
        if isinstance(sid, str) and isinstance(since, int | float):
            # The cookie is signed, not stored: a copy of it would stay valid until it expires,
            # so the ended session is remembered server-side until then.
            until = float(since) + ctx.session_max_age_s
            await run_in_threadpool(ctx.store.end_session, sid, until)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)


def _queue_routes(app: FastAPI, ctx: ReviewContext, templates: Jinja2Templates) -> None:
    @app.get("/", response_class=HTMLResponse)
    def queue(request: Request, model_version: str | None = None) -> Response:
        reviewer = _reviewer(request, ctx)
        if not reviewer:
            return RedirectResponse("/login", status_code=303)
        version = model_version or None
        item = ctx.store.claim(reviewer, version)
        now = ctx.store.clock()
        context = {
            "reviewer": reviewer,
            "csrf": _csrf(request),
            "item": item,
            "age": _age(item.age(now)) if item else "",
            "waiting": ctx.store.waiting(version),
            "waiting_all": ctx.store.waiting(),
            "versions": ctx.store.versions(),
            "version": version or "",
            "stats": ctx.store.stats(),
            "fmt_age": _age,
            "notice": NOTICES.get(request.query_params.get("notice", ""), ""),
            "changed": _changed(ctx, item),
        }
        return templates.TemplateResponse(request, "queue.html", context)


def _changed(ctx: ReviewContext, item: Item | None) -> str:
    """Why the item's image is not the one the model scored (its source changed since), or ""."""
    if item is None or item.sha256 is None or item.source == "inline":
        return ""
    try:
        scored_bytes(ctx.reader, item)
    except ImageChanged as exc:
        return f"{exc}. Skip it, or decide from the details."
    except (InputRejected, SourceUnavailable):
        return ""  # the image's own request says why it cannot be shown
    return ""


def _decide_route(app: FastAPI, ctx: ReviewContext) -> None:
    @app.post("/decide")
    async def decide(request: Request) -> Response:
        form = await _form(request)
        reviewer = _reviewer(request, ctx)
        if not reviewer:
            return RedirectResponse("/login?notice=expired", status_code=303)
        verdict, request_id = form.get("verdict", ""), form.get("request_id", "")
        back = {"model_version": form["model_version"]} if form.get("model_version") else {}
        if verdict == "skip":
            try:
                await run_in_threadpool(ctx.store.skip, reviewer, request_id)
            except ClaimLost as exc:  # only an item in the queue is skipped (and remembered)
                return _back({**back, "notice": exc.reason})
            return _back(back)
        if verdict not in VERDICTS:
            return PlainTextResponse(f"verdict must be one of {VERDICTS} or skip", status_code=400)
        # The store (SQLite, fsync) and the writer (waits for the broker, up to
        # review.delivery_timeout_s) block: off the event loop, so one slow decision never holds
        # up the other reviewers' pages.
        return await run_in_threadpool(_record_decision, ctx, reviewer, request_id, verdict, back)


def _record_decision(
    ctx: ReviewContext, reviewer: str, request_id: str, verdict: str, back: dict[str, str]
) -> Response:
    """Deliver one decision, then record it; blocking, run in a worker thread.

    `ReviewStore.begin_decision` makes the item this request's alone until it is recorded or given
    up, so a double submit or two reviewers racing for one item give exactly one decision.
    """
    started = time.perf_counter()
    try:
        item = ctx.store.begin_decision(reviewer, request_id)
    except ClaimLost as exc:
        return _back({**back, "notice": exc.reason})
    decision = _decision(item, verdict, reviewer, ctx.store.clock())
    try:
        ctx.writer.write(decision)
    except Exception:
        ctx.store.abandon_decision(request_id)
        logger.exception("decision on %s not delivered", log_safe(request_id))
        return PlainTextResponse(
            "the decision could not be written to Kafka; it was not recorded, try again",
            status_code=503,
        )
    ctx.store.decided(decision)
    ctx.metrics.decision_seconds.observe(time.perf_counter() - started)
    if ctx.on_decided is not None:
        ctx.on_decided()
    return _back(back)


def _image_routes(app: FastAPI, ctx: ReviewContext) -> None:
    @app.get("/image/{request_id}")
    def image(request: Request, request_id: str) -> Response:
        if not _reviewer(request, ctx):
            return PlainTextResponse("log in first", status_code=401)
        item = ctx.store.get(request_id)
        if item is None:
            return PlainTextResponse("no such item", status_code=404)
        try:
            data, kind = read_image(ctx.reader, item, ctx.max_pixels)
        except InputRejected as exc:
            logger.warning("image of %s refused: %s", request_id, exc)
            status = 403 if exc.reason == "forbidden_path" else 404
            return PlainTextResponse(f"image not available ({exc.reason})", status_code=status)
        except SourceUnavailable as exc:
            return PlainTextResponse(f"image source unavailable: {exc}", status_code=503)
        except ImageChanged as exc:  # never show other bytes as the scored image
            return PlainTextResponse(str(exc), status_code=409)
        # no-store: an image under review may be harmful; no browser keeps it on disk
        return Response(data, media_type=kind, headers={"Cache-Control": "no-store"})

    @app.get("/image")
    def image_by_query(request: Request, request_id: str = Query("", alias="id")) -> Response:
        # What the page links: a request id may be "." or "..", which a browser resolves away
        # as a path segment (percent-encoded too), so the id travels in the query.
        return image(request, request_id)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/health")
    async def health() -> Response:
        # async and lock-free: it answers even while every worker thread waits on Kafka
        problem = ctx.problem()
        if problem is not None:
            return PlainTextResponse(problem, status_code=503)
        return PlainTextResponse("ok")


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded form of a POST, after checking its CSRF token (`StaleForm` otherwise)."""
    body = await _bounded_body(request, MAX_FORM_BYTES)
    form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
    expected = request.session.get("csrf")
    if not expected or not secrets.compare_digest(form.get("csrf", ""), expected):
        raise StaleForm
    return form


async def _bounded_body(request: Request, limit: int) -> bytes:
    """The request's body, refused (413) as soon as it is known to pass ``limit`` bytes: by its
    Content-Length before reading, else while streaming, so a large body is never held whole."""
    from fastapi import HTTPException

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, "form too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, "form too large")
    return bytes(body)


def _reviewer(request: Request, ctx: ReviewContext) -> str | None:
    """The logged-in reviewer of the request's session; None when there is none, or when that
    session was ended by a log-out (a copy of its cookie is refused)."""
    reviewer = request.session.get("reviewer")
    if not reviewer:
        return None
    sid = request.session.get("sid")
    if not isinstance(sid, str) or ctx.store.session_ended(sid):
        request.session.clear()
        return None
    return str(reviewer)


def _csrf(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


def _back(query: dict[str, str]) -> Response:
    return RedirectResponse("/" + (f"?{urlencode(query)}" if query else ""), status_code=303)


def _decision(item: Item, verdict: str, reviewer: str, now: float) -> Decision:
    return Decision(
        id=item.request_id,
        decision=verdict,  # type: ignore[arg-type]  # checked against VERDICTS
        reviewer=reviewer,
        decided_at=now,
        model_name=item.model_name,
        model_version=item.model_version,
        model_label=item.model_label,
        p_harmful=item.p_harmful,
        threshold=item.threshold,
        source=item.source,
        sha256=item.sha256,
    )


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
