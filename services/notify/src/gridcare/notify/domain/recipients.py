"""Who a message goes to, and the routes to them in their order of preference.

A contact is a person (a resident, a grid worker, a member of staff, a volunteer) or a chat
group. Its routes come from what the registry knows of it (a chat bot URL, a phone, an
address) and the community's providers (``channels.csv``: the SMS gateway, the mail
server); a channel the community has no provider for goes to the console and a file (the
embedded default: ``make run`` needs no provider). The order is the person's own
(``channels``), else chat, then SMS, then email: failover goes down this list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

CHANNELS = ("chat", "sms", "email")
#: A chat group speaks no one language: it reads every one of these, in this order.
GROUP_LANGUAGES = "zh+en"
#: Where a channel goes when the community has no provider for it.
CONSOLE = "console://"


@dataclass(frozen=True)
class Route:
    channel: str  # chat | sms | email
    url: str  # the provider (or the chat bot), placeholders not filled
    to: str | None  # the address a provider needs (a phone, an email address)

    def as_list(self) -> list[str | None]:
        return [self.channel, self.url, self.to]

    @classmethod
    def of(cls, values: Sequence[str | None]) -> Route:
        channel, url, to = values
        return cls(str(channel), str(url), to)


@dataclass(frozen=True)
class Contact:
    contact_id: str  # a person's id, or "group:<group_id>"
    name: str
    language: str
    community_id: str | None
    chat_url: str = ""
    phone: str | None = None
    email: str | None = None
    channels: tuple[str, ...] = ()  # the person's order of preference
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_group(self) -> bool:
        return self.contact_id.startswith("group:")


class Unreachable(LookupError):
    """A contact with no route at all (no chat, no phone, no address)."""


def routes(contact: Contact, providers: Mapping[str, str]) -> list[Route]:
    """The contact's routes in order. ``providers``: the community's URL per channel kind
    (sms, email); a kind without one goes to the console."""
    order = [c for c in contact.channels if c in CHANNELS] or list(CHANNELS)
    found: list[Route] = []
    for channel in order:
        if channel == "chat" and contact.chat_url:
            found.append(Route("chat", contact.chat_url, None))
        elif channel == "sms" and contact.phone:
            found.append(Route("sms", providers.get("sms") or CONSOLE, contact.phone))
        elif channel == "email" and contact.email:
            found.append(Route("email", providers.get("email") or CONSOLE, contact.email))
    if not found:
        raise Unreachable(f"{contact.contact_id} has no chat, phone or email to reach")
    return found
