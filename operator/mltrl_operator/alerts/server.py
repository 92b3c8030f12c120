"""The HTTP side of the receiver: POST /alerts (Alertmanager's webhook) and GET /healthz.

Answers, in the order they are checked:

- 401 without `Authorization: Bearer <token>` or with another token (nothing is read);
- 415 unless the body is declared `application/json`;
- 413 for a body over the limit (by Content-Length, and again while reading);
- 400 for malformed JSON or a payload that is not Alertmanager's version 4, naming the
  field; nothing in such a notification is recorded, not even its valid alerts;
- 503 when the alerts of some technology could not be stored (the API server could not be
  reached, the technology kept changing, or its status.incidents is full of Pending
  incidents, which are never dropped: outcome `deferred`): the alerts of every other technology are
  stored all the same, and Alertmanager's retry finds them as duplicates and redoes only
  what is missing;
- 200 otherwise, with one result per alert. An alert about a technology that does not
  exist is answered 200 as well (outcome `unknown-technology`): a retry could not fix it,
  and Alertmanager would retry a failure for as long as the alert fires.
"""

from __future__ import annotations

import hmac
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import ClientError, web

from mltrl_operator import metrics
from mltrl_operator.alerts.config import ReceiverConfig
from mltrl_operator.alerts.lookup import Key, PolicyCache, resolve_technology
from mltrl_operator.alerts.payload import PayloadError, ReceivedAlert, parse_notification
from mltrl_operator.alerts.recorder import (
    BEYOND_HORIZON,
    DEFERRED,
    DUPLICATE,
    GROUPED,
    RESOLVED,
    UNKNOWN_TECHNOLOGY,
    Recorded,
    TechnologyBusy,
    record_alerts,
)
from mltrl_operator.domain.incidents import ALERT_RESOLVED_EVENT
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.errors import ApiError
from mltrl_operator.k8s.events import NORMAL, EventRecorder
from mltrl_operator.k8s.lookups import TechnologyLookup, TechnologyStored

logger = logging.getLogger(__name__)

JSON = "application/json"
CHALLENGE = 'Bearer realm="mltrl-operator alerts"'


# The API server could not be reached, answered 5xx/429, or lost its answer.
UNAVAILABLE = (ApiError, OSError, TechnologyBusy, ClientError, TimeoutError)


class NotAllStored(Exception):
    """Some technologies' alerts could not be stored (the others were): answered 503."""


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class AlertReceiver:
    """The aiohttp application plus its listener; an async context manager for run_operator."""

    def __init__(
        self, config: ReceiverConfig, client: KubeClient, clock: Callable[[], datetime],
        cached: TechnologyLookup | None = None,
        stored: TechnologyStored | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.clock = clock
        self.cached = cached
        """The operator's cached technologies (recorder.record_alerts: a GET saved)."""
        self.stored = stored
        """Told of each incident stored, so the operator settles it without waiting for
        the watch to bring the write back (issue 17: the alert's latency)."""
        self.policies = PolicyCache(client, config.policy_cache_seconds)
        self.events = EventRecorder(client)
        self._runner: web.AppRunner | None = None
        self.port = config.port

    # --- the application ----------------------------------------------------------------
    def app(self) -> web.Application:
        # aiohttp's own limit sits above ours so that our 413 carries our message.
        app = web.Application(client_max_size=self.config.max_body_bytes + 1)
        app.router.add_post("/alerts", self._alerts)
        app.router.add_get("/healthz", self._healthz)
        return app

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _authorised(self, request: web.Request) -> bool:
        expected = self.config.token.current()
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if expected is None or scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(presented.strip().encode(), expected)

    async def _body(self, request: web.Request) -> bytes | web.Response:
        limit = self.config.max_body_bytes
        too_big = _error(413, f"the body is larger than {limit} bytes")
        if request.content_length is not None and request.content_length > limit:
            return too_big
        # Counted while reading too: a chunked body declares no length up front.
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.read(64 * 1024):
            size += len(chunk)
            if size > limit:
                return too_big
            chunks.append(chunk)
        return b"".join(chunks)

    async def _alerts(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(
                401, "a valid bearer token is required", {"WWW-Authenticate": CHALLENGE}
            )
        if request.content_type != JSON:
            return _error(415, f"the body must be {JSON}, not {request.content_type or 'untyped'}")
        raw = await self._body(request)
        if isinstance(raw, web.Response):
            return raw
        try:
            notification = parse_notification(raw)
        except PayloadError as error:
            return _error(400, str(error))
        if notification.truncated_alerts:
            logger.warning(
                "Alertmanager left %d alerts out of notification %s (max_alerts)",
                notification.truncated_alerts, notification.group_key,
            )
        for alert in notification.alerts:
            metrics.count_alert_received(alert.status)
        try:
            results = await self.handle(notification.alerts)
        except (*UNAVAILABLE, NotAllStored) as error:
            logger.warning("could not record alerts, Alertmanager will retry: %s", error)
            return _error(503, f"could not record the alerts, try again: {error}")
        return web.json_response({"results": [_result(r) for r in results]})

    # --- the work -----------------------------------------------------------------------
    async def handle(self, alerts: tuple[ReceivedAlert, ...]) -> list[Recorded]:
        """Record every alert; results in the order of the notification."""
        by_technology: dict[Key, list[int]] = defaultdict(list)
        results: dict[int, Recorded] = {}
        for index, alert in enumerate(alerts):
            resolution = await resolve_technology(self.client, self.config, alert.labels)
            if resolution.key is None:
                results[index] = Recorded(alert, UNKNOWN_TECHNOLOGY, None, resolution.detail)
                _count(results[index])
            else:
                by_technology[resolution.key].append(index)
        now = self.clock()
        failures: list[str] = []
        # Each technology on its own: one that fails does not keep the others' alerts
        # from being stored, and a retry finds those as duplicates and redoes only the rest.
        for (namespace, name), indices in by_technology.items():
            try:
                policy = await self.policies.policy_for(namespace)
                record = await record_alerts(
                    self.client, namespace, name, [alerts[i] for i in indices], policy, now,
                    self.cached,
                )
            except UNAVAILABLE as error:
                failures.append(f"{namespace}/{name}: {error}")
                continue
            for index, recorded in zip(indices, record.results, strict=True):
                results[index] = recorded
                _count(recorded)
            deferred = [r for r in record.results if r.outcome == DEFERRED]
            if deferred:
                # Not stored: answered 503 so that Alertmanager sends them again.
                failures.append(f"{namespace}/{name}: {len(deferred)} alert(s) deferred, "
                                f"{deferred[0].detail}")
            if record.stored is not None:
                if self.stored is not None:
                    self.stored(record.based_on, record.stored)
                await self._announce(record.stored, record.results, now)
        if failures:
            raise NotAllStored("; ".join(failures))
        return [results[i] for i in range(len(alerts))]

    async def _announce(
        self, technology: dict[str, Any], results: tuple[Recorded, ...], now: datetime
    ) -> None:
        """After the alerts are stored: a named event per resolved alert, and a failure to
        post one does not turn the stored alerts into a 503. A firing alert gets none here:
        one event per transition (issue 17), and its transition is the action, told once
        by the reconcile that settles it (RolledBack, Demoted, AlertNotified, ...); until
        then `status.incidents` shows it Pending."""
        for recorded in results:
            alert = recorded.alert
            if recorded.outcome != RESOLVED:
                continue
            reason, message = ALERT_RESOLVED_EVENT, (
                f"alert {alert.name} ({alert.fingerprint}) resolved: {recorded.detail}"
            )
            try:
                await self.events.record(
                    technology, type=NORMAL, reason=reason, now=now, message=message,
                    key=f"{alert.fingerprint}/{alert.starts_at}",
                )
            except UNAVAILABLE as error:
                logger.warning("could not post event %s: %s", reason, error)

    # --- the listener -------------------------------------------------------------------
    async def start(self) -> None:
        ssl_context = self.config.tls.context() if self.config.tls else None
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.config.host, self.config.port, ssl_context=ssl_context
        )
        await site.start()
        for address in self._runner.addresses:
            if isinstance(address, tuple):
                self.port = int(address[1])
                break
        scheme = "https" if ssl_context else "http"
        logger.info(
            "alerts receiver listening on %s://%s:%d/alerts", scheme, self.config.host, self.port
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> AlertReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _count(recorded: Recorded) -> None:
    # Recorded incidents are counted when the reconciler acts on them (acted or failed).
    result = {
        DUPLICATE: "duplicate",
        GROUPED: "duplicate",
        RESOLVED: "resolved",
        UNKNOWN_TECHNOLOGY: UNKNOWN_TECHNOLOGY,
        BEYOND_HORIZON: BEYOND_HORIZON,
        DEFERRED: DEFERRED,
    }
    if recorded.outcome in result:
        action = str(recorded.action) if recorded.action else None
        metrics.count_alert_action(action, result[recorded.outcome])


def _result(recorded: Recorded) -> dict[str, Any]:
    alert = recorded.alert
    return {
        "fingerprint": alert.fingerprint,
        "technology": recorded.technology,
        "alertname": alert.name,
        "status": alert.status,
        "startsAt": alert.starts_at,
        "outcome": recorded.outcome,
        "action": str(recorded.action) if recorded.action else None,
        "detail": recorded.detail,
    }
