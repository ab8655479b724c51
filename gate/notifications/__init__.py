"""Notifications: denials, new critical findings and expiring waivers, sent to webhooks.

:func:`denied`, :func:`new_criticals` and :func:`waiver_expiring` turn gate's
records into :class:`Notification` values; a :class:`Notifier` delivers them
in gate's JSON document or as Slack incoming-webhook messages, from a
background thread, with retries; :class:`NotificationHub` connects a core's
decisions and scans to a notifier.
"""

from gate.notifications._events import (
    CRITICAL_FINDING,
    DENY,
    EVENTS,
    WAIVER_EXPIRING,
    ExpiringWaiver,
    Notification,
    denied,
    new_criticals,
    waiver_expiring,
)
from gate.notifications._formats import json_body, slack_body
from gate.notifications._hub import NotificationHub, StoreWaivers, WaiverSource
from gate.notifications._notifier import Notifier, NotifierObserver, RetryPolicy, Webhook

__all__ = [
    "CRITICAL_FINDING",
    "DENY",
    "EVENTS",
    "WAIVER_EXPIRING",
    "ExpiringWaiver",
    "Notification",
    "NotificationHub",
    "Notifier",
    "NotifierObserver",
    "RetryPolicy",
    "StoreWaivers",
    "WaiverSource",
    "Webhook",
    "denied",
    "json_body",
    "new_criticals",
    "slack_body",
    "waiver_expiring",
]
