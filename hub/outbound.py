"""The one way the hub calls an address that someone else gave it.

Tenants give the hub addresses (a channel's `webhook_url`), and so do their customers' systems (an
attachment's `url`); later, organizations' own AI endpoints. Every such call goes through
`guarded_client`: each new connection resolves the name itself and refuses any address that is
not on the public internet (loopback, private, link-local, shared, multicast, reserved, and the
same hidden inside IPv6), so neither a redirect nor a name that changes its answer between two
look-ups (DNS rebinding) reaches the hub's own network. Only http and https, no proxy from the
environment, bounded time and size. The operator may allow private targets on purpose with
`HUB_OUTBOUND_ALLOW` (networks such as `10.0.0.0/8`, or host names).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import weakref
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
import structlog

log = structlog.get_logger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Shown to tenants for every outbound failure alike: whether a port was closed, filtered or
# answering is the operator's to read in the logs, not a tenant's to probe for.
GENERIC_FAILURE = "the address could not be reached or did not accept the request"


class OutboundRefused(Exception):
    """The address is not one the hub may call (its scheme, or where its name leads)."""


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Which private targets the operator allows: networks, and host names trusted by name."""

    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, raw: str) -> OutboundPolicy:
        networks: list[Network] = []
        hosts: set[str] = set()
        for item in (part.strip() for part in raw.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(networks=tuple(networks), hosts=frozenset(hosts))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        if any(address in network for network in self.networks if network.version == address.version):
            return True
        return is_public(address)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """An address on the public internet: not loopback, private, link-local, shared, multicast,
    reserved or unspecified, nor one of those inside an IPv6 address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
    return address.is_global and not address.is_multicast


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise OutboundRefused(f"{host} does not resolve") from error
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def allowed_addresses(policy: OutboundPolicy, host: str, port: int) -> list[IPAddress]:
    """The addresses a connection to `host` may use; refused when the name leads to any address
    the policy does not allow (one bad answer among good ones is a warning sign, not a choice)."""
    addresses = await _resolve(host, port)
    if policy.allows_host(host):
        return addresses
    refused = [address for address in addresses if not policy.allows_address(address)]
    if refused or not addresses:
        raise OutboundRefused(f"{host} leads to an address the hub does not call")
    return addresses


def check_scheme(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as error:
        raise OutboundRefused("not a valid address") from error
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise OutboundRefused("only http and https addresses are called")
    if parsed.userinfo:
        raise OutboundRefused("addresses with a user name or password are not called")
    return parsed


async def check_url(policy: OutboundPolicy, url: str) -> None:
    """Refuse, now, an address that the hub would refuse to call (for a 400 when it is saved)."""
    parsed = check_scheme(url)
    await allowed_addresses(policy, parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Every TCP connection resolves and checks its host itself, then connects to the checked
    address; TLS still verifies the certificate against the host name."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await allowed_addresses(self.policy, host, port)
        except OutboundRefused as refused:
            log.warning("outbound call refused", host=host, port=port, reason=str(refused))
            raise httpcore.ConnectError(str(refused)) from refused
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last = error
        assert last is not None
        raise last

    async def connect_unix_socket(self, *_args: Any, **_kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not called")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: OutboundPolicy, limits: httpx.Limits) -> None:
        super().__init__(trust_env=False, limits=limits)
        ssl_context = self._pool._ssl_context  # the one httpx built: system roots, verified
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(policy),
        )


def is_refusal(error: BaseException) -> bool:
    """Whether an httpx error is the guard refusing the target (not the target failing)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OutboundRefused):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def guarded_client(
    policy: OutboundPolicy, *, timeout: float, max_connections: int = 100, follow_redirects: bool = False
) -> httpx.AsyncClient:
    """An HTTP client that can reach only what the policy allows, however it is redirected."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=20)
    return httpx.AsyncClient(
        transport=_GuardedTransport(policy, limits),
        timeout=timeout,
        follow_redirects=follow_redirects,
        max_redirects=5,
        trust_env=False,
    )


_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)


def shared_client(policy: OutboundPolicy, *, timeout: float, max_connections: int = 200) -> httpx.AsyncClient:
    """One pooled client per event loop and policy: connections are reused, and the TLS set-up
    is paid once, not for every message."""
    loop = asyncio.get_running_loop()
    clients = _shared.setdefault(loop, {})
    key = (policy, timeout, max_connections)
    client = clients.get(key)
    if client is None or client.is_closed:
        client = guarded_client(policy, timeout=timeout, max_connections=max_connections)
        clients[key] = client
    return client


class TooLarge(Exception):
    """The answer passed the size the caller allows."""


async def read_capped(response: httpx.Response, limit: int) -> AsyncIterator[bytes]:
    """The body of a streamed answer, chunk by chunk, stopping past `limit` bytes."""
    received = 0
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received > limit:
            raise TooLarge()
        yield chunk
