"""The business's CRM endpoint, as an HTTP peer: signed POSTs of outbound events with retries.

What the events are and when they are sent is :mod:`cascade.outbound`; this module only talks
HTTP. An event's body is compact JSON, signed like the operator desk's tasks
(``X-Cascade-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``). Each POST gets
:data:`ATTEMPTS` tries with capped exponential backoff (honouring ``Retry-After``); a 4xx other
than 408 and 429, or a redirect, is the receiver refusing the event for good.

**Where events may go.** The URL is the business's, but the request comes from inside AWS: a URL
naming a loopback, private, link-local or otherwise non-public address (the instance metadata
service at 169.254.169.254 or fd00:ec2::254, an IPv4-mapped IPv6 address, 0x7f.1 or 2130706433)
is refused when it is registered and again before every delivery, since DNS can change: the host
is resolved, every address is checked, and the POST connects to the address that was checked
(with the host name kept for the ``Host`` header and TLS). The local stack allows loopback for
its CRM stand-in (``CASCADE_CRM_ALLOW_LOOPBACK=1``); on AWS it is off."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from cascade.observability import logger

if TYPE_CHECKING:
    from typing import TypeAlias

    import httpx

    HttpClient: TypeAlias = httpx.Client

ATTEMPTS = 3
BACKOFF_S = 0.5  # before the second try; doubles, capped at BACKOFF_CAP_S
BACKOFF_CAP_S = 5.0
USER_AGENT = "cascade-outbound/1"

Outcome = Literal["delivered", "refused", "failed"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)


class UnsafeUrl(ValueError):
    """A webhook URL that must not be called from inside the stack."""


def _embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (mapped ::ffff:a.b.c.d, 6to4, NAT64), else itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_problem(ip: IPAddress, allow_loopback: bool = False) -> str | None:
    """Why the service must not POST to ``ip`` (None: it is a public address)."""
    inner = _embedded_ipv4(ip)
    kind = _kind(inner, allow_loopback)
    if kind is None:
        return None
    return f"{ip} is {kind}" if inner == ip else f"{ip} (that is {inner}) is {kind}"


def _kind(ip: IPAddress, allow_loopback: bool) -> str | None:
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    if ip.is_link_local:
        return "a link-local address (where the cloud's metadata service answers)"
    if ip.is_private:
        return "a private address"
    if not ip.is_global or ip.is_multicast:
        return "not a public address"
    return None


def literal_ip(host: str) -> IPAddress | None:
    """The address a URL's host names directly, in any form a resolver accepts (127.1, 0x7f000001,
    2130706433, 0177.0.0.1), or None for a host name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def host_problem(host: str, allow_loopback: bool = False, resolve: bool = True) -> str | None:
    """Why a webhook may not go to ``host``: its literal address, or any address it resolves to
    now. A name that does not resolve is no problem here (delivery resolves it again)."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return None if allow_loopback else f"{host} is a loopback address"
    ip = literal_ip(name)
    if ip is not None:
        return address_problem(ip, allow_loopback)
    if not resolve:
        return None
    try:
        found = _resolve(name, 443)
    except OSError:
        return None
    for address in found:
        problem = address_problem(address, allow_loopback)
        if problem is not None:
            return f"{host} resolves to {problem}"
    return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]


@dataclass(frozen=True)
class Pinned:
    """A request to a checked address: the URL with the address for host, the Host header and
    the name TLS checks the certificate against."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def pin(url: str, allow_loopback: bool = False) -> Pinned:
    """Resolve ``url``'s host, check every address, and aim at the first: raises
    :class:`UnsafeUrl` if any address is not public, ``OSError`` if the name does not resolve."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        addresses: list[IPAddress] = [ipaddress.ip_address("127.0.0.1")]
    else:
        literal = literal_ip(name)
        addresses = [literal] if literal is not None else _resolve(name, port)
    if not addresses:
        raise OSError(f"{host} has no address")
    for address in addresses:
        problem = address_problem(address, allow_loopback)
        if problem is not None:
            raise UnsafeUrl(problem)
    chosen = addresses[0]
    literal_host = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    netloc = literal_host + (f":{parts.port}" if parts.port else "")
    host_header = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    extensions = {"sni_hostname": host} if parts.scheme == "https" and literal_ip(name) is None else {}
    return Pinned(urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")),
                  {"host": host_header}, extensions)


def allow_loopback() -> bool:
    from cascade.settings import settings

    return settings().crm_allow_loopback


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def signed_headers(secret: str, event: dict[str, Any], body: bytes, now: float | None = None) -> dict[str, str]:
    from cascade.channels.operator import signature

    timestamp = int(time.time() if now is None else now)
    return {"content-type": "application/json", "user-agent": USER_AGENT,
            "x-cascade-event-id": str(event["id"]), "x-cascade-event-type": str(event["type"]),
            "x-cascade-timestamp": str(timestamp), "x-cascade-signature": signature(secret, timestamp, body)}


def safe_url(url: str) -> str:
    """What a log may say about the receiver: scheme, host and path (no credentials, no query)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def backoff(attempt: int, retry_after: str | None = None) -> float:
    """Seconds to wait before try ``attempt + 1`` (``attempt`` ≥ 1)."""
    wait = min(BACKOFF_CAP_S, BACKOFF_S * 2 ** (attempt - 1))
    if retry_after and retry_after.strip().isdigit():
        wait = max(wait, min(BACKOFF_CAP_S, float(retry_after)))
    return wait


def deliver(event: dict[str, Any], url: str, secret: str, http: httpx.Client,
            sleep: Any = time.sleep) -> Outcome:
    """POST one event, with up to :data:`ATTEMPTS` tries. ``refused``: the receiver said no for
    good (a 4xx other than 408/429, or a redirect), or its host now resolves to an address the
    service must not call; ``failed``: it never said yes."""
    import httpx

    body = body_of(event)
    where = safe_url(url)
    for attempt in range(1, ATTEMPTS + 1):
        retry_after = None
        try:
            target = pin(url, allow_loopback())  # resolved and checked before every try
            resp = http.post(target.url, content=body, headers={**signed_headers(secret, event, body), **target.headers},
                             extensions=target.extensions)
        except UnsafeUrl as exc:
            logger.warning("crm url refused: not a public address", event_id=event["id"], type=event["type"],
                           problem=str(exc), url=where)
            return "refused"
        except (httpx.HTTPError, OSError) as exc:
            status, problem = None, type(exc).__name__
        else:
            status, problem = resp.status_code, f"HTTP {resp.status_code}"
            retry_after = resp.headers.get("retry-after")
            if 200 <= status < 300:
                logger.info("crm event delivered", event_id=event["id"], type=event["type"],
                            cascade_id=event.get("cascade_id"), status=status, attempts=attempt, url=where)
                return "delivered"
            if 300 <= status < 500 and status not in (408, 429):
                logger.warning("crm refused the event: dropped", event_id=event["id"], type=event["type"],
                               cascade_id=event.get("cascade_id"), status=status, url=where)
                return "refused"
        logger.warning("crm delivery failed", event_id=event["id"], type=event["type"], attempt=attempt,
                       problem=problem, status=status, url=where)
        if attempt < ATTEMPTS:
            sleep(backoff(attempt, retry_after))
    return "failed"


def worst_case_seconds(timeout_s: float) -> float:
    """How long one record can take: every try timing out, plus the waits between them."""
    return ATTEMPTS * (timeout_s + 3.0) + sum(backoff(a) for a in range(1, ATTEMPTS))


_http: httpx.Client | None = None


def crm_client() -> httpx.Client:
    global _http
    if _http is None:
        from cascade.channels import http_client

        _http = http_client()  # bounded by the provider timeout; redirects are not followed
    return _http


__all__ = ["ATTEMPTS", "BACKOFF_CAP_S", "BACKOFF_S", "USER_AGENT", "Outcome", "Pinned", "UnsafeUrl",
           "address_problem", "allow_loopback", "backoff", "body_of", "crm_client", "deliver", "host_problem",
           "literal_ip", "pin", "safe_url", "signed_headers", "worst_case_seconds"]
