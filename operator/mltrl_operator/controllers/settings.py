"""kopf settings: its bookkeeping stays under our annotation prefix, never in our status."""

from __future__ import annotations

import kopf

from mltrl_operator.k8s.client import PAGE_SIZE

BOOKKEEPING_PREFIX = "operator.mltrl.dev"
IDLE_WORKER_SECONDS = 0.5


def configure(settings: kopf.OperatorSettings) -> kopf.OperatorSettings:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=BOOKKEEPING_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=BOOKKEEPING_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{BOOKKEEPING_PREFIX}/finalizer"
    # Our own events say what happened and why; kopf's log-echo events would only add writes.
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    # kopf keeps an object's worker, and the last raw event it handled (the object as sent,
    # managedFields and all), for idle_timeout after its handler returns. Ours return at
    # once (they queue a key: controllers/workqueue.py), so at start-up every listed object
    # would sit in memory five seconds for nothing; a worker made again costs a task.
    settings.queueing.idle_timeout = IDLE_WORKER_SECONDS
    # kopf lists every kind before it watches it, by default in one response: at 10,000
    # technologies the whole list (as sent, managedFields and all) was alive at once next
    # to our cache. A page at a time, as our own priming and client-go's reflectors list.
    settings.watching.chunk_size = PAGE_SIZE
    return settings
