"""HAProxy as a load balancer for BlockTraffic and AllowTraffic, through its runtime API (stats socket).

One deployment-group load balancer is one HAProxy backend; a target is a server of that backend, named
like the instance. BlockTraffic drains the server (``set server <be>/<srv> state drain``: no new
connections, in-flight ones finish), then, once drained or when the deregistration delay passed, puts it
in maintenance (``state maint``). AllowTraffic makes it ready again (``state ready``, and ``enable health``
if its health checks had been disabled) and HAProxy's own health checks say when it is in service: a
checked server is marked down before it is made ready, so that it must pass ``rise`` checks first (HAProxy
itself would bring it back up at once with its pre-maintenance health). A repeated BlockTraffic leaves a
server already in maintenance there. ``observe`` reads ``show servers state`` (operational, administrative
and check state) and ``show stat`` (current sessions, check rise).

The runtime API is a line protocol: one command per connection, ``<command>\\n`` in, the answer until
EOF out. It is small enough to speak directly (no third-party HAProxy library is worth depending on), and
it is synchronous because the engine calls load balancers from worker threads.

Runtime state is lost when HAProxy reloads (the configuration file's state comes back). Every call here is
idempotent, so the engine re-applies what it wants by calling again; ``observe`` always reads the state
HAProxy has now. Written against HAProxy 2.6 (Debian bookworm).

Canary and linear traffic shifting (``shift``) sets server weights: ``set server <be>/<srv> weight <w>``
with absolute weights (0–256; a percentage would be relative to each server's initial weight), equal
within the original and within the replacement servers, chosen so that the replacement's share of the
sum is as close to the wanted share as such weights allow (``domain.traffic_routing.integer_weights``).
Weights are independent of drain and maintenance (a drained server with weight 9 still gets nothing
new), and, like every runtime change, a reload resets them to the configuration's: ``observe_shift``
then reads another share and the engine shifts again. Servers of the backend named in neither list
keep their weights, and so their part of the traffic.

HAProxy 2.6 exposes a server's check ``rise`` and ``fall`` (``show stat``: ``check_rise``, ``check_fall``)
but not its check interval (``inter``), neither in ``show stat`` nor in ``show servers state``; the
interval used for ``timing()`` is therefore a constructor argument, by default HAProxy's own default 2 s.
"""

from __future__ import annotations

import csv
import re
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opendeploy.domain.traffic_routing import HAPROXY_MAX_WEIGHT, integer_weights
from opendeploy.integrations.traffic import (
    HealthTiming,
    TargetObservation,
    TargetState,
    TrafficError,
    TrafficMisconfigured,
)

DEFAULT_TIMEOUT = 5.0  # seconds to connect and to receive a complete answer
DEFAULT_CHECK_INTERVAL = 2.0  # HAProxy's default ``inter``
DEFAULT_RISE = 2  # HAProxy's default ``rise``

# srv_op_state (include/haproxy/server-t.h, enum srv_state)
OP_STOPPED = 0
OP_STARTING = 1
OP_RUNNING = 2
OP_STOPPING = 3

# srv_admin_state bits (include/haproxy/server-t.h, enum srv_admin)
ADMIN_FORCED_MAINT = 0x01  # set server ... state maint
ADMIN_INHERITED_MAINT = 0x02  # tracks a server in maintenance
ADMIN_CONFIG_MAINT = 0x04  # "disabled" in the configuration (FMAINT is set with it)
ADMIN_FORCED_DRAIN = 0x08  # set server ... state drain
ADMIN_INHERITED_DRAIN = 0x10  # tracks a draining server
ADMIN_RESOLUTION_MAINT = 0x20  # its address could not be resolved
ADMIN_MAINT = ADMIN_FORCED_MAINT | ADMIN_INHERITED_MAINT | ADMIN_RESOLUTION_MAINT
ADMIN_DRAIN = ADMIN_FORCED_DRAIN | ADMIN_INHERITED_DRAIN

# srv_check_state bits (include/haproxy/check-t.h)
CHECK_CONFIGURED = 0x02
CHECK_ENABLED = 0x04

# HAProxy accepts only these characters in proxy and server names; checking them also keeps a name from
# smuggling a second command (";") or argument (" ") into the runtime API.
_NAME = re.compile(r"[A-Za-z0-9_.:-]+")


class RuntimeAPI:
    """A client of HAProxy's runtime API at ``unix:/path`` (or ``/path``) or ``host:port``."""

    def __init__(self, address: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = address
        self.timeout = timeout
        self._family, self._target = _parse_address(address)

    def execute(self, command: str) -> str:
        """Send one command and return HAProxy's answer without its trailing blank line."""
        if "\n" in command or ";" in command:
            raise TrafficError(f"HAProxy at {self.address}: refusing to send {command!r} (one command only)")
        deadline = time.monotonic() + self.timeout
        try:
            with socket.socket(self._family, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self._target)
                sock.sendall(command.encode() + b"\n")
                chunks: list[bytes] = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"no complete answer within {self.timeout:g}s")
                    sock.settimeout(remaining)
        except OSError as exc:  # TimeoutError included
            raise TrafficError(f"HAProxy at {self.address}: {command!r} failed: {exc}") from exc
        return b"".join(chunks).decode(errors="replace").rstrip("\n")


def _parse_address(address: str) -> tuple[socket.AddressFamily, str | tuple[str, int]]:
    if address.startswith("unix:") or address.startswith("/"):
        path = address.removeprefix("unix:")
        if path:
            return socket.AF_UNIX, path
    else:
        host, sep, port = address.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if sep and host and port.isdigit():
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            return family, (host, int(port))
    raise TrafficError(f"HAProxy stats socket address {address!r} is neither unix:/path nor host:port")


@dataclass(frozen=True)
class ServerState:
    """One server's row of ``show servers state``."""

    name: str
    op_state: int
    admin_state: int
    check_state: int
    weight: int | None = None  # srv_uweight: the weight set at runtime, else the configuration's


@dataclass(frozen=True)
class ServerStats:
    """The parts of one server's ``show stat`` row the driver uses."""

    name: str
    sessions: int  # scur
    status: str  # UP, DOWN, MAINT, DRAIN, "no check", "UP 1/2", ...
    check_rise: int | None  # None when the server has no health check
    check_fall: int | None


def parse_servers_state(text: str, backend: str) -> dict[str, ServerState]:
    """The servers of ``backend`` in ``show servers state`` output (format version 1), by name.

    The columns are found by the header line, so an added column in a later HAProxy does not matter."""
    header: list[str] | None = None
    servers: dict[str, ServerState] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            header = line.lstrip("#").split()
            continue
        if header is None or not line.strip():
            continue
        row = dict(zip(header, line.split(), strict=False))
        if row.get("be_name") != backend or "srv_name" not in row:
            continue
        servers[row["srv_name"]] = ServerState(
            name=row["srv_name"],
            op_state=_int(row.get("srv_op_state")),
            admin_state=_int(row.get("srv_admin_state")),
            check_state=_int(row.get("srv_check_state")),
            weight=_int_or_none(row.get("srv_uweight")),
        )
    if header is None:
        raise ValueError(f"not 'show servers state' output: {text[:200]!r}")
    return servers


def parse_stat(text: str, backend: str) -> dict[str, ServerStats]:
    """The servers of ``backend`` in ``show stat`` CSV output, by name (FRONTEND/BACKEND rows left out)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# pxname,"):
        raise ValueError(f"not 'show stat' output: {text[:200]!r}")
    lines[0] = lines[0].removeprefix("# ")
    servers: dict[str, ServerStats] = {}
    for row in csv.DictReader(line for line in lines if line.strip()):
        name = row.get("svname") or ""
        if row.get("pxname") != backend or name in ("FRONTEND", "BACKEND"):
            continue
        servers[name] = ServerStats(
            name=name,
            sessions=_int(row.get("scur")),
            status=row.get("status") or "",
            check_rise=_int_or_none(row.get("check_rise")),
            check_fall=_int_or_none(row.get("check_fall")),
        )
    return servers


def target_state(server: ServerState) -> TargetState:
    """What a server's HAProxy state means to a deployment.

    Maintenance wins over drain (HAProxy's own rule); a ready server is in service once HAProxy runs it
    (its health checks passed, or it has none) and unhealthy while it is down, starting or stopping."""
    if server.admin_state & ADMIN_MAINT:
        return TargetState.OUT_OF_SERVICE
    if server.admin_state & ADMIN_DRAIN:
        return TargetState.DRAINING
    if server.op_state == OP_RUNNING:
        return TargetState.IN_SERVICE
    return TargetState.UNHEALTHY


def _int(value: str | None) -> int:
    return _int_or_none(value) or 0


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "", "-") else None
    except ValueError:
        return None


class HAProxyBackend:
    """One HAProxy backend as a ``LoadBalancer``; its servers are the targets.

    ``deregistration_delay`` (seconds) is how long BlockTraffic may wait for a draining server's sessions
    to end. ``check_interval`` is the servers' check ``inter`` in seconds, which HAProxy 2.6 does not
    expose (default: HAProxy's 2 s); the ``rise`` comes from HAProxy itself."""

    def __init__(
        self,
        address: str,
        backend: str,
        deregistration_delay: float,
        *,
        check_interval: float = DEFAULT_CHECK_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not _NAME.fullmatch(backend):
            raise TrafficMisconfigured(f"{backend!r} is not a valid HAProxy backend name")
        self._api = RuntimeAPI(address, timeout=timeout)
        self._backend = backend
        self.deregistration_delay = deregistration_delay
        self.check_interval = check_interval

    @property
    def name(self) -> str:
        return self._backend

    @property
    def address(self) -> str:
        return self._api.address

    def timing(self) -> HealthTiming:
        """drain_limit = the deregistration delay; healthy_expected = (rise × inter) + inter, with the
        largest rise among the backend's health-checked servers (0 when none has a health check).

        ``show stat`` leaves a server's rise out while it is in maintenance or its checks are disabled;
        such a server counts with HAProxy's default rise."""
        checked = [s.name for s in self._servers_state().values() if s.check_state & CHECK_CONFIGURED]
        if not checked:
            return HealthTiming(drain_limit=self.deregistration_delay, healthy_expected=0.0)
        stats = self._stats()
        rise = max((stats[name].check_rise if name in stats else None) or DEFAULT_RISE for name in checked)
        return HealthTiming(
            drain_limit=self.deregistration_delay, healthy_expected=(rise + 1) * self.check_interval
        )

    def block(self, target: str) -> None:
        """Drain ``target``; a server already in maintenance stays there (draining it would let it
        leave maintenance)."""
        server = self._server(target)
        if not server.admin_state & ADMIN_FORCED_MAINT:
            self._set_state(target, "drain")

    def finish_block(self, target: str) -> None:
        self._server(target)
        self._set_state(target, "maint")

    def allow(self, target: str) -> None:
        """Make ``target`` ready; when it was blocked and has health checks, it must pass them afresh.

        HAProxy 2.6 brings a server leaving maintenance back UP at once with the health it had before
        (checks are paused in maintenance), so a broken new revision would get traffic until ``fall``
        checks failed. Instead the server leaves maintenance through drain (no new connections), is
        marked down, and only then made ready: it takes traffic after ``rise`` passing checks, as a
        target newly registered with an ELB does. A server already ready is left as it is."""
        server = self._server(target)
        checked = bool(server.check_state & CHECK_CONFIGURED)
        if checked and not server.check_state & CHECK_ENABLED:
            self._act(f"enable health {self._backend}/{target}", target)
        if not server.admin_state & (ADMIN_FORCED_MAINT | ADMIN_FORCED_DRAIN):
            return
        if checked:
            if server.admin_state & ADMIN_FORCED_MAINT:
                self._set_state(target, "drain")
            self._act(f"set server {self._backend}/{target} health down", target)
        self._set_state(target, "ready")

    def observe(self, targets: Sequence[str]) -> Mapping[str, TargetObservation]:
        servers = self._servers_state()
        stats = self._stats()
        observations: dict[str, TargetObservation] = {}
        for target in targets:
            server = servers.get(target)
            if server is None:
                observations[target] = TargetObservation(TargetState.UNKNOWN)
                continue
            sessions = stats[target].sessions if target in stats else 0
            observations[target] = TargetObservation(target_state(server), sessions)
        return observations

    def shift(self, original: Sequence[str], replacement: Sequence[str], replacement_percent: float) -> None:
        """Give the original and the replacement servers the weights that split new requests
        ``replacement_percent`` to the replacement; weights already right are left alone."""
        servers = self._shifted_servers(original, replacement)
        try:
            weights = integer_weights(
                len(original), len(replacement), replacement_percent, max_weight=HAPROXY_MAX_WEIGHT
            )
        except ValueError as error:
            raise TrafficMisconfigured(f"HAProxy backend {self._backend!r}: {error}") from None
        for targets, weight in zip((original, replacement), weights, strict=True):
            for target in targets:
                if servers[target].weight != weight:
                    self._act(f"set server {self._backend}/{target} weight {weight}", target)

    def observe_shift(self, original: Sequence[str], replacement: Sequence[str]) -> float | None:
        """The replacement servers' part of the weights of both sides, in percent (None when all are 0)."""
        servers = self._shifted_servers(original, replacement)
        replacement_weight = sum(servers[target].weight or 0 for target in replacement)
        total = replacement_weight + sum(servers[target].weight or 0 for target in original)
        return None if total == 0 else 100 * replacement_weight / total

    def _shifted_servers(self, original: Sequence[str], replacement: Sequence[str]) -> dict[str, ServerState]:
        both = sorted(set(original) & set(replacement))
        if both:
            raise TrafficMisconfigured(
                f"HAProxy backend {self._backend!r}: {', '.join(both)} cannot be both an original and a "
                "replacement server"
            )
        for target in (*original, *replacement):
            self._check_target(target)
        servers = self._servers_state()
        for target in (*original, *replacement):
            if target not in servers:
                raise self._no_server(target, servers)
        return servers

    def _server(self, target: str) -> ServerState:
        self._check_target(target)
        servers = self._servers_state()
        if target not in servers:
            raise self._no_server(target, servers)
        return servers[target]

    def _set_state(self, target: str, state: str) -> None:
        self._act(f"set server {self._backend}/{target} state {state}", target)

    def _act(self, command: str, target: str) -> None:
        answer = self._api.execute(command).strip()
        if not answer:
            return
        if answer.startswith("No such server"):
            raise self._no_server(target)
        if answer.startswith("No such backend"):
            raise self._no_backend()
        raise TrafficError(f"HAProxy at {self.address} refused {command!r}: {answer}")

    def _servers_state(self) -> dict[str, ServerState]:
        answer = self._api.execute(f"show servers state {self._backend}")
        if answer.startswith("Can't find backend"):
            raise self._no_backend()
        try:
            return parse_servers_state(answer, self._backend)
        except ValueError:
            raise TrafficError(
                f"HAProxy at {self.address}: unexpected answer to 'show servers state': {answer[:200]}"
            ) from None

    def _stats(self) -> dict[str, ServerStats]:
        answer = self._api.execute(f"show stat {self._backend} 4 -1")  # 4: servers only, -1: all of them
        if answer.startswith("No such proxy"):
            raise self._no_backend()
        try:
            return parse_stat(answer, self._backend)
        except ValueError:
            raise TrafficError(
                f"HAProxy at {self.address}: unexpected answer to 'show stat': {answer[:200]}"
            ) from None

    def _check_target(self, target: str) -> None:
        if not _NAME.fullmatch(target):
            raise TrafficMisconfigured(
                f"{target!r} cannot be a server of HAProxy backend {self._backend!r}: server names "
                "use only letters, digits and _ . : -"
            )

    def _no_server(self, target: str, servers: Mapping[str, ServerState] | None = None) -> TrafficError:
        names = ", ".join(servers if servers is not None else self._servers_state()) or "none"
        return TrafficMisconfigured(
            f"HAProxy backend {self._backend!r} has no server {target!r} (servers: {names})"
        )

    def _no_backend(self) -> TrafficError:
        answer = self._api.execute("show backend")
        backends = [line for line in answer.splitlines() if line.strip() and not line.startswith("#")]
        return TrafficMisconfigured(
            f"HAProxy at {self.address} has no backend {self._backend!r} "
            f"(backends: {', '.join(backends) or 'none'})"
        )
