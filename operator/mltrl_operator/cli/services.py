"""The servers that run beside kopf, built from the command line."""

from __future__ import annotations

import argparse

from mltrl_operator.alerts.config import ReceiverConfig, TokenSource, tls_files
from mltrl_operator.alerts.server import AlertReceiver
from mltrl_operator.controllers.runtime import Clock, Service
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.lookups import OperatorTechnologies
from mltrl_operator.webhooks.cluster import KubeClusterState
from mltrl_operator.webhooks.config import WebhookConfig, webhook_config
from mltrl_operator.webhooks.server import WebhookServer


def receiver_config(args: argparse.Namespace) -> ReceiverConfig | None:
    if args.alerts_port is None:
        return None
    return ReceiverConfig(
        port=args.alerts_port,
        host=args.alerts_host,
        token=TokenSource.from_options(args.alerts_token_file),
        tls=tls_files(args.alerts_tls_cert, args.alerts_tls_key, args.alerts_client_ca),
        technology_label=args.alerts_technology_label,
        namespace_label=args.alerts_namespace_label,
        inference_service_label=args.alerts_inferenceservice_label,
        max_body_bytes=args.alerts_max_body_bytes,
    )


def alert_services(args: argparse.Namespace) -> list[Service]:
    """What runs beside kopf; raises ConfigError before anything has started."""
    config = receiver_config(args)
    if config is None:
        return []

    def receiver(
        client: KubeClient, clock: Clock, cached: OperatorTechnologies
    ) -> AlertReceiver:
        return AlertReceiver(config, client, clock, cached, stored=cached.stored)

    return [receiver]


def webhook_service(config: WebhookConfig) -> Service:
    def webhooks(client: KubeClient, clock: Clock, _: OperatorTechnologies) -> WebhookServer:
        return WebhookServer(config, KubeClusterState(client), clock)

    return webhooks


def webhook_services(args: argparse.Namespace) -> list[Service]:
    """The admission webhooks, when --webhook-port is given; raises WebhookConfigError."""
    config = webhook_config(
        args.webhook_port, args.webhook_cert, args.webhook_key,
        host=args.webhook_host, trusted_groups=args.webhook_trusted_group,
    )
    return [] if config is None else [webhook_service(config)]
