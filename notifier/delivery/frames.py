"""Socket message encoding. A notification is serialized once per recipient, never per socket."""

from dataclasses import dataclass

from notifier.schemas import NotificationOut


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient's copy of a notification, ready to write to each of their sockets."""

    username: str
    notification_id: int
    frame: str


def notification_frame(notification: NotificationOut) -> str:
    return '{"type":"notification","notification":' + notification.model_dump_json() + "}"


def delivery_for(notification: NotificationOut) -> Delivery:
    return Delivery(notification.username, notification.id, notification_frame(notification))
