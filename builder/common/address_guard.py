"""The public-address guard: connect only to addresses on the public internet.

An author names the host of an artifact URL; the build and the gate fetch it. A client
made with `public_only` (`builder.common.http_client`) opens its sockets through the
pools here: the host is resolved, every address it resolves to is checked, and the
connection goes to a checked address, on the first request and on every redirect.
"""

from __future__ import annotations

import ipaddress
import socket

import urllib3
from urllib3.util import connection as urllib3_connection

from builder.common.errors import FetchError


class NonPublicAddressError(FetchError):
    """A host resolves to an address that is not on the public internet."""


def non_public_reason(address: str) -> str | None:
    """Return what kind of non-public address `address` is (`loopback`, …), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone (`fe80::1%eth0`)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 reaches 127.0.0.1
    checks = (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unique-local", ip in _UNIQUE_LOCAL),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-global", not ip.is_global),  # shared address space (100.64/10) and the like
    )
    return next((label for label, found in checks if found), None)


_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


def public_address(host: str, port: int) -> str:
    """Resolve `host` and return an address to connect to; refuse any non-public one.

    Every address the name resolves to is checked (not only the first), so a name
    that mixes a public address with a private one is refused as a whole.
    """
    infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        reason = non_public_reason(address)
        if reason is not None:
            shown = host if host == address else f"{host} ({address})"
            raise NonPublicAddressError(
                f"refusing to connect to {shown}, a {reason} address (expected a public "
                f"host; a registry serving artifacts from its own network sets "
                f"policy.allow_private_addresses: true)"
            )
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    return addresses[0]


class _PublicOnly(urllib3.connection.HTTPConnection):
    """A connection that opens its socket only to a checked public address."""

    def _new_conn(self) -> socket.socket:
        try:
            address = public_address(self._dns_host, self.port)
        except socket.gaierror as e:
            raise urllib3.exceptions.NameResolutionError(self.host, self, e) from e
        try:
            return urllib3_connection.create_connection(
                (address, self.port),
                self.timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except TimeoutError as e:
            raise urllib3.exceptions.ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from e
        except OSError as e:
            raise urllib3.exceptions.NewConnectionError(
                self, f"Failed to establish a new connection: {e}"
            ) from e


class _PublicHTTPConnection(_PublicOnly):
    """A plain HTTP connection to a checked public address."""


class _PublicHTTPSConnection(_PublicOnly, urllib3.connection.HTTPSConnection):
    """A TLS connection to a checked public address (the certificate still names the host)."""


class PublicHTTPPool(urllib3.HTTPConnectionPool):
    """The pool of an http host whose connections go only to public addresses."""

    ConnectionCls = _PublicHTTPConnection


class PublicHTTPSPool(urllib3.HTTPSConnectionPool):
    """The pool of an https host whose connections go only to public addresses."""

    ConnectionCls = _PublicHTTPSConnection
