"""Telling an operator that a run failed: a JSON message to a webhook from the settings."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from prefect import Flow
from prefect.client.schemas.objects import FlowRun, State

from flows.settings import Settings
from tasks.redact import redacted

logger = logging.getLogger(__name__)


def failure_message(
    flow_name: str,
    run_name: str,
    run_id: str,
    state_message: str | None,
    parameters: dict[str, Any],
) -> dict[str, Any]:
    """What the webhook receives: enough to find the run, and why it failed in one line."""
    return {
        "text": redacted(
            f"brukardata: {flow_name} run '{run_name}' failed: {state_message or 'no message'}"
        ),
        "flow": flow_name,
        "flow_run_name": run_name,
        "flow_run_id": run_id,
        "message": None if state_message is None else redacted(state_message),
        "parameters": {  # a deployment may still hold a URL with a password: never sent on
            k: redacted(v) if isinstance(v, str) else v
            for k, v in parameters.items()
            if isinstance(v, str | int | list | None)
        },
    }


def notify_failure(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Prefect ``on_failure`` hook. A notification that cannot be sent is logged, never raised:
    the run has failed already and must keep its own reason."""
    url = Settings().notify_webhook
    if not url:
        return
    payload = failure_message(
        flow.name, flow_run.name, str(flow_run.id), state.message, dict(flow_run.parameters)
    )
    transport = httpx.HTTPTransport(retries=3)
    try:
        with httpx.Client(transport=transport, timeout=10) as client:
            client.post(url, json=payload).raise_for_status()
    except httpx.HTTPError as err:
        logger.error("could not notify %s of the failed run: %s", url, err)
