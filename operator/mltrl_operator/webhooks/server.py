"""The HTTPS side of the admission webhooks.

    POST /mutate-levelreview         POST /validate-levelreview
    POST /validate-mltechnology      POST /validate-mltrlpolicy
    POST /validate-inferenceservice  GET  /healthz
    POST /validate-mltrlauditrecord  (every operation, DELETE included)
    POST /mutate-mltrlwaiver         POST /validate-mltrlwaiver

Answers:

- 200 with an AdmissionReview for every well-formed AdmissionReview v1 request, whether
  it is admitted or refused; a kind the endpoint does not admit is refused there (400 in
  the review's status), naming both kinds;
- 400 (a JSON `{"error": ...}`) for a body that is not JSON or not an AdmissionReview v1
  request; the API server then applies the webhook's failurePolicy;
- 413 for a body over the limit;
- 500 when the cluster could not be read: the failurePolicy decides (Fail refuses,
  Ignore admits), as the platform team chose in the webhook configuration.

Only HTTPS: the API server calls webhooks over TLS, and the certificate is reloaded when
its files change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from mltrl_operator import metrics
from mltrl_operator.webhooks.config import CertificateFiles, WebhookConfig
from mltrl_operator.webhooks.records import RECORD_ENDPOINTS, admit_every_operation
from mltrl_operator.webhooks.rules import ENDPOINTS, ClusterState, Endpoint, Settings, admit
from mltrl_operator.webhooks.wire import (
    MalformedJson,
    MalformedReview,
    parse_review_body,
    review_response,
)

logger = logging.getLogger(__name__)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class WebhookServer:
    """The aiohttp application plus its HTTPS listener; an async context manager."""

    def __init__(
        self, config: WebhookConfig, state: ClusterState, clock: Callable[[], datetime]
    ) -> None:
        self.config = config
        self.state = state
        self.settings = Settings(clock=clock, trusted_groups=config.trusted_groups)
        self.port = config.port
        self._runner: web.AppRunner | None = None
        self._certificates: CertificateFiles | None = None
        self._reloader: asyncio.Task[None] | None = None

    # --- the application ----------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes)
        for endpoint in (*ENDPOINTS, *RECORD_ENDPOINTS):
            app.router.add_post(endpoint.path, self._handler(endpoint))
        app.router.add_get("/healthz", self._healthz)
        return app

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _handler(self, endpoint: Endpoint) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.Response:
            return await self.handle(endpoint, request)

        return handle

    async def handle(self, endpoint: Endpoint, request: web.Request) -> web.Response:
        try:
            review = parse_review_body(await request.read())
        except MalformedJson as error:
            return _error(400, f"the body is not JSON: {error}")
        except MalformedReview as error:
            return _error(400, f"not an AdmissionReview v1 request: {error}")
        try:
            decide = admit_every_operation if endpoint in RECORD_ENDPOINTS else admit
            verdict = await decide(endpoint, review, self.state, self.settings)
        except Exception as error:  # the API server's failurePolicy decides
            logger.exception("%s could not decide on %s", endpoint.path, review.uid)
            return _error(500, f"could not decide: {error}")
        who = review.requester.username
        target = f"{review.kind} {review.namespace}/{review.name}".replace(" /", " ")
        metrics.count_gate_decision(
            "admission", "deny" if not verdict.allowed else "warn" if verdict.warnings else "allow"
        )
        if not verdict.allowed:
            logger.info(
                "%s refused %s %s by %s: %s",
                endpoint.path, review.operation, target, who, verdict.message,
            )
        elif verdict.warnings:
            logger.info("%s warned %s about %s: %s", endpoint.path, who, target, verdict.warnings)
        return web.json_response(review_response(review.uid, verdict))

    # --- the listener -------------------------------------------------------------------
    async def _reload_certificates(self, certificates: CertificateFiles) -> None:
        while True:
            await asyncio.sleep(self.config.reload_seconds)
            try:
                if certificates.reload():
                    logger.info("reloaded the webhook certificate %s", certificates.cert)
            except Exception as error:  # keep serving with the certificate we have
                logger.warning("cannot reload the webhook certificate: %s", error)

    async def start(self) -> None:
        self._certificates = CertificateFiles(self.config.cert_file, self.config.key_file)
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.config.host, self.config.port,
            ssl_context=self._certificates.context,
        )
        await site.start()
        for address in self._runner.addresses:
            if isinstance(address, tuple):
                self.port = int(address[1])
                break
        self._reloader = asyncio.create_task(self._reload_certificates(self._certificates))
        logger.info("admission webhooks listening on https://%s:%d", self.config.host, self.port)

    async def stop(self) -> None:
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloader
            self._reloader = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WebhookServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
