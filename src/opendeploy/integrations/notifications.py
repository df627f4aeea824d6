"""Sending one notification out of the outbox: SNS Publish, EventBridge PutEvents, or a signed webhook.

Every sender does one thing — send one :class:`~opendeploy.domain.notifications.Notification` — and
raises :class:`NotificationError` when it was not delivered (``permanent`` when trying again cannot
help), so the delivery worker (``integrations/outbox_delivery``) owns retries, backoff and bookkeeping.
AWS clients come from ``integrations/aws_clients`` (the SDK's standard configuration, e.g.
``AWS_ENDPOINT_URL_SNS`` / ``AWS_ENDPOINT_URL_EVENTBRIDGE`` for a stand-in).

Webhooks are an HTTP ``POST`` of the event's JSON (the EventBridge envelope) with these headers:

- ``Content-Type: application/json``
- ``User-Agent: opendeploy-webhook/1``
- ``X-Opendeploy-Delivery: <id>`` — the notification's id, the same on every retry: deduplicate by it
- ``X-Opendeploy-Event: <event>`` — ``DeploymentStart``, ``DeploymentSuccess``, ``InstanceFailure`` …
  (``DeploymentQueued`` too), as in the outbox's ``event_type``
- ``X-Opendeploy-Signature: sha256=<hex>`` — HMAC-SHA256 of the raw body under the webhook's secret;
  verify it with a constant-time comparison (:func:`verify_signature`) before trusting the body.

A 2xx answer is a delivery; anything else (another status, a refused connection, a timeout after
``send_timeout`` seconds) is a failure to retry. Redirects are not followed.

:class:`FakeSender` records what it is asked to send, and can fail or stall per destination, for tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import botocore.exceptions
import httpx

from opendeploy.domain.notifications import Channel, Destinations, Notification
from opendeploy.integrations import aws_clients
from opendeploy.settings import NotificationSettings

SIGNATURE_HEADER = "X-Opendeploy-Signature"
DELIVERY_HEADER = "X-Opendeploy-Delivery"
EVENT_HEADER = "X-Opendeploy-Event"
USER_AGENT = "opendeploy-webhook/1"
NOTIFICATION_ID_ATTRIBUTE = "opendeploy.notification-id"  # SNS message attribute

# AWS error codes no retry can cure.
_PERMANENT_AWS_ERRORS = frozenset(
    {
        "InvalidParameter",
        "InvalidParameterValue",
        "ValidationException",
        "NotAuthorizedForSourceException",
        "NotAuthorizedForDetailTypeException",
        "MalformedDetail",
        "InvalidArgument",
    }
)


class NotificationError(Exception):
    """A notification was not delivered. ``permanent``: trying again cannot help (give it up)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class NotificationSender(Protocol):
    """Sends one notification; returns when it was accepted, raises :class:`NotificationError` if not."""

    def send(self, notification: Notification) -> None: ...


def destinations_for(settings: NotificationSettings) -> Destinations:
    """Where the server's settings send state-change events (besides triggers' topics)."""
    return Destinations(event_bus=settings.event_bus, webhooks=tuple(w.url for w in settings.webhooks))


def senders_for(settings: NotificationSettings) -> dict[Channel, NotificationSender]:
    """The sender of each outbox kind: the settings' own (tests' fakes), else the real ones."""
    if settings.senders is not None:
        return dict(settings.senders)
    return {
        Channel.SNS: SnsSender(),
        Channel.EVENTBRIDGE: EventBridgeSender(settings.event_source),
        Channel.WEBHOOK: WebhookSender({w.url: w.secret for w in settings.webhooks}, settings.send_timeout),
    }


def _aws_error(action: str, error: Exception) -> NotificationError:
    if isinstance(error, botocore.exceptions.ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        return NotificationError(f"{action}: {error}", permanent=code in _PERMANENT_AWS_ERRORS)
    return NotificationError(f"{action}: {error}")


class SnsSender:
    """SNS Publish of a trigger message to its topic, through the server's AWS SDK configuration.

    The notification id travels as the message attribute ``opendeploy.notification-id``; a FIFO topic
    (``….fifo``) also gets it as the deduplication id, and the deployment id as the message group.
    """

    def __init__(self, client: Callable[[], Any] | None = None) -> None:
        self._client = client or (lambda: aws_clients.client("sns"))

    def send(self, notification: Notification) -> None:
        request: dict[str, Any] = {
            "TopicArn": notification.destination,
            "Message": notification.body,
            "MessageAttributes": {
                NOTIFICATION_ID_ATTRIBUTE: {"DataType": "String", "StringValue": notification.id}
            },
        }
        if notification.subject:
            request["Subject"] = notification.subject
        if notification.destination.endswith(".fifo"):
            request["MessageGroupId"] = notification.deployment_id or "opendeploy"
            request["MessageDeduplicationId"] = notification.id.replace("-", "")
        try:
            self._client().publish(**request)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise _aws_error(f"SNS Publish to {notification.destination}", error) from error
        except aws_clients.AwsConfigurationError as error:
            raise NotificationError(f"SNS Publish to {notification.destination}: {error}") from error


class EventBridgeSender:
    """EventBridge PutEvents of a state-change event to the configured bus, as ``source``.

    The envelope's ``detail-type``, ``resources``, ``time`` and ``detail`` go as they are; EventBridge
    gives the event its own id and account. A failed entry (``FailedEntryCount``) is a failure.
    """

    def __init__(self, source: str, client: Callable[[], Any] | None = None) -> None:
        self.source = source
        self._client = client or (lambda: aws_clients.client("events"))

    def send(self, notification: Notification) -> None:
        event = json.loads(notification.body)
        entry = {
            "Time": datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
            "Source": self.source,
            "Resources": event["resources"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"], separators=(",", ":")),
            "EventBusName": notification.destination,
        }
        action = f"EventBridge PutEvents to {notification.destination}"
        try:
            answer = self._client().put_events(Entries=[entry])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise _aws_error(action, error) from error
        except aws_clients.AwsConfigurationError as error:
            raise NotificationError(f"{action}: {error}") from error
        if answer.get("FailedEntryCount"):
            failed = (answer.get("Entries") or [{}])[0]
            code = failed.get("ErrorCode", "")
            raise NotificationError(
                f"{action}: {code}: {failed.get('ErrorMessage', '')}",
                permanent=code in _PERMANENT_AWS_ERRORS,
            )


def signature(secret: str, body: bytes) -> str:
    """The ``X-Opendeploy-Signature`` value for ``body``: ``sha256=`` and the HMAC-SHA256 in hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the right signature of ``body`` (for receivers; constant time)."""
    return header is not None and hmac.compare_digest(signature(secret, body), header)


class WebhookSender:
    """HTTP POST of an event to a webhook URL, signed with that URL's secret (module docstring).

    One ``httpx`` client (connection pool) is shared by the delivery threads; ``timeout`` bounds the
    connection and each read and write.
    """

    def __init__(self, secrets: Mapping[str, str], timeout: float = 10.0) -> None:
        self.secrets = dict(secrets)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        )

    def send(self, notification: Notification) -> None:
        secret = self.secrets.get(notification.destination)
        if secret is None:
            raise NotificationError(
                f"no webhook {notification.destination} is configured (or it has no secret) any more",
                permanent=True,
            )
        body = notification.body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            DELIVERY_HEADER: notification.id,
            EVENT_HEADER: notification.event_type,
            SIGNATURE_HEADER: signature(secret, body),
        }
        try:
            answer = self._http.post(notification.destination, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise NotificationError(
                f"webhook {notification.destination}: {type(error).__name__}: {error}"
            ) from error
        if not 200 <= answer.status_code < 300:
            raise NotificationError(
                f"webhook {notification.destination} answered HTTP {answer.status_code}: {answer.text[:200]}"
            )

    def close(self) -> None:
        self._http.close()


class FakeSender:
    """An in-memory sender for tests: records each notification it delivers (``sent``), and fails or
    stalls for the destinations it is told to (``fail``, ``stall``)."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self.attempts: list[Notification] = []
        self.failing: dict[str, NotificationError] = {}
        self.stalling: dict[str, float] = {}
        self.slow: set[str] = set()
        self._lock = threading.Lock()
        self.delivered = threading.Condition(self._lock)

    def fail(self, destination: str, *, permanent: bool = False, message: str = "unreachable") -> None:
        with self._lock:
            self.failing[destination] = NotificationError(message, permanent=permanent)

    def recover(self, destination: str) -> None:
        with self._lock:
            self.failing.pop(destination, None)
            self.stalling.pop(destination, None)
            self.slow.discard(destination)

    def stall(self, destination: str, seconds: float, *, then_fail: bool = True) -> None:
        """Each send to ``destination`` takes ``seconds``, then fails like a timeout (or succeeds)."""
        with self._lock:
            self.stalling[destination] = seconds
            if not then_fail:
                self.slow.add(destination)

    def send(self, notification: Notification) -> None:
        with self._lock:
            self.attempts.append(notification)
            stall = self.stalling.get(notification.destination)
            slow = notification.destination in self.slow
            error = self.failing.get(notification.destination)
        if stall is not None:
            time.sleep(stall)
            if not slow:
                raise NotificationError(f"{notification.destination}: timed out after {stall}s")
        if error is not None:
            raise NotificationError(str(error), permanent=error.permanent)
        with self._lock:
            self.sent.append(notification)
            self.delivered.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Notification]:
        """Wait until at least ``count`` notifications were delivered; the delivered ones."""
        with self._lock:
            self.delivered.wait_for(lambda: len(self.sent) >= count, timeout)
            return list(self.sent)
