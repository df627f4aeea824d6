"""The HAProxy load-balancer driver against a real HAProxy 2.6 (Debian's), and its parsing of HAProxy's
answers (captured from that HAProxy).

Each test runs its own HAProxy in front of three local HTTP servers (``support.haproxy``), health-checked
every 100 ms (rise 2, fall 2), and awaits conditions by polling; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from opendeploy.integrations.haproxy import (
    CHECK_ENABLED,
    HAProxyBackend,
    RuntimeAPI,
    ServerState,
    parse_servers_state,
    parse_stat,
    target_state,
)
from opendeploy.integrations.traffic import TargetObservation, TargetState, TrafficError, TrafficMisconfigured
from support.haproxy import SERVER_HEADER, HAProxy, HTTPBackend, unavailable_reason
from support.server import free_port, wait_for

HOSTS = ("host-1", "host-2", "host-3")
IN_SERVICE = TargetObservation(TargetState.IN_SERVICE, 0)


@pytest.fixture
def hosts() -> Iterator[dict[str, HTTPBackend]]:
    backends = {name: HTTPBackend.start(name) for name in HOSTS}
    yield backends
    for backend in backends.values():
        backend.stop()


StartHAProxy = Callable[..., HAProxy]


@pytest.fixture
def start_haproxy(tmp_path: Path, hosts: dict[str, HTTPBackend]) -> Iterator[StartHAProxy]:
    """Start an HAProxy in front of ``hosts`` (keyword arguments as for ``HAProxy.start``)."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    started: list[HAProxy] = []

    def start(**kwargs: Any) -> HAProxy:
        kwargs.setdefault("servers", {name: backend.port for name, backend in hosts.items()})
        proxy = HAProxy.start(tmp_path / f"haproxy-{len(started) + 1}", **kwargs)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def haproxy(start_haproxy: StartHAProxy) -> HAProxy:
    return start_haproxy(check_inter_ms=100, rise=2, fall=2)


@pytest.fixture
def lb(haproxy: HAProxy) -> HAProxyBackend:
    balancer = HAProxyBackend(haproxy.stats_socket, "web", deregistration_delay=30.0, check_interval=0.1)
    all_up = dict.fromkeys(HOSTS, IN_SERVICE)
    wait_for(lambda: balancer.observe(HOSTS) == all_up, message="every server up")
    return balancer


def get(haproxy: HAProxy, path: str = "/", *, server: str | None = None) -> str:
    """One request through HAProxy's frontend; the answer is ``"<host> <version>"``."""
    headers = {SERVER_HEADER: server} if server else {}
    response = httpx.get(haproxy.url + path, headers=headers, timeout=10)
    response.raise_for_status()
    return response.text.strip()


def answering_hosts(haproxy: HAProxy, requests: int = 12) -> set[str]:
    return {get(haproxy).split()[0] for _ in range(requests)}


def state_of(lb: HAProxyBackend, target: str) -> TargetObservation:
    return lb.observe([target])[target]


# --- the contract against a real HAProxy ---------------------------------------------------------------


def test_observe_reports_every_server_of_the_backend_and_unknown_for_others(lb: HAProxyBackend) -> None:
    assert lb.name == "web"
    assert lb.observe([*HOSTS, "host-9"]) == {
        **dict.fromkeys(HOSTS, IN_SERVICE),
        "host-9": TargetObservation(TargetState.UNKNOWN),
    }


def test_block_drains_new_requests_away_while_an_in_flight_request_completes(
    haproxy: HAProxy, hosts: dict[str, HTTPBackend], lb: HAProxyBackend
) -> None:
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(get, haproxy, "/hold", server="host-1")
        wait_for(lambda: hosts["host-1"].holding == 1, message="the held request at host-1")
        assert state_of(lb, "host-1") == TargetObservation(TargetState.IN_SERVICE, 1)

        lb.block("host-1")
        lb.block("host-1")  # idempotent

        assert state_of(lb, "host-1") == TargetObservation(TargetState.DRAINING, 1)
        assert answering_hosts(haproxy) == {"host-2", "host-3"}
        assert not in_flight.done()
        hosts["host-1"].release()
        assert in_flight.result(timeout=10) == "host-1 v1"
    wait_for(lambda: state_of(lb, "host-1") == TargetObservation(TargetState.DRAINING, 0))


def test_finish_block_takes_the_target_out_of_service(
    haproxy: HAProxy, hosts: dict[str, HTTPBackend], lb: HAProxyBackend
) -> None:
    lb.block("host-1")
    lb.finish_block("host-1")
    lb.finish_block("host-1")  # idempotent
    served = hosts["host-1"].served

    assert state_of(lb, "host-1") == TargetObservation(TargetState.OUT_OF_SERVICE, 0)
    assert answering_hosts(haproxy) == {"host-2", "host-3"}
    assert get(haproxy, server="host-1").split()[0] != "host-1"  # not even when asked for by name
    assert hosts["host-1"].served == served
    assert "MAINT" in haproxy.command("show stat web 4 -1")

    lb.block("host-1")  # a repeated BlockTraffic leaves a server in maintenance there
    assert state_of(lb, "host-1").state is TargetState.OUT_OF_SERVICE


@pytest.mark.parametrize("finished", [True, False], ids=["after-maintenance", "after-drain"])
def test_allow_is_unhealthy_until_the_health_checks_pass_then_in_service(
    start_haproxy: StartHAProxy, finished: bool
) -> None:
    # slower checks than the other tests, so that the unhealthy phase (rise × inter) cannot be missed
    haproxy = start_haproxy(check_inter_ms=250, rise=3, fall=2)
    lb = HAProxyBackend(haproxy.stats_address, "web", deregistration_delay=30.0)
    lb.block("host-1")
    if finished:
        lb.finish_block("host-1")

    lb.allow("host-1")

    assert state_of(lb, "host-1").state is TargetState.UNHEALTHY
    assert answering_hosts(haproxy) == {"host-2", "host-3"}
    wait_for(lambda: state_of(lb, "host-1") == IN_SERVICE, message="host-1 in service")
    assert answering_hosts(haproxy) == set(HOSTS)
    lb.allow("host-1")  # allowing a server in service again leaves it in service
    assert state_of(lb, "host-1") == IN_SERVICE


def test_allow_stays_unhealthy_while_the_health_endpoint_fails(
    haproxy: HAProxy, hosts: dict[str, HTTPBackend], lb: HAProxyBackend
) -> None:
    lb.block("host-1")
    lb.finish_block("host-1")
    hosts["host-1"].healthy = False  # the new revision does not come up

    lb.allow("host-1")

    checks = hosts["host-1"].health_checks
    # more checks than rise + fall: HAProxy has had every chance to call it up
    wait_for(lambda: hosts["host-1"].health_checks >= checks + 5, message="five more health checks")
    assert state_of(lb, "host-1").state is TargetState.UNHEALTHY
    assert answering_hosts(haproxy) == {"host-2", "host-3"}
    hosts["host-1"].healthy = True
    wait_for(lambda: state_of(lb, "host-1") == IN_SERVICE, message="host-1 in service")


def test_allow_enables_health_checks_that_were_disabled(
    haproxy: HAProxy, hosts: dict[str, HTTPBackend], lb: HAProxyBackend
) -> None:
    assert haproxy.command("disable health web/host-1").strip() == ""
    lb.block("host-1")
    lb.finish_block("host-1")
    hosts["host-1"].healthy = False

    lb.allow("host-1")

    server = parse_servers_state(haproxy.command("show servers state web"), "web")["host-1"]
    assert server.check_state & CHECK_ENABLED
    checks = hosts["host-1"].health_checks
    wait_for(lambda: hosts["host-1"].health_checks >= checks + 3, message="health checks running")
    assert state_of(lb, "host-1").state is TargetState.UNHEALTHY


def test_allow_without_health_checks_is_in_service_at_once(start_haproxy: StartHAProxy) -> None:
    haproxy = start_haproxy(check=False)
    lb = HAProxyBackend(haproxy.stats_socket, "web", deregistration_delay=30.0)
    lb.block("host-1")
    lb.finish_block("host-1")

    lb.allow("host-1")

    assert state_of(lb, "host-1") == IN_SERVICE
    assert lb.timing().healthy_expected == 0.0


def test_timing_comes_from_the_deregistration_delay_and_the_check_rise(
    start_haproxy: StartHAProxy, lb: HAProxyBackend, haproxy: HAProxy
) -> None:
    timing = HAProxyBackend(haproxy.stats_socket, "web", 42.0, check_interval=0.1).timing()
    assert timing.drain_limit == 42.0
    assert timing.healthy_expected == pytest.approx((2 + 1) * 0.1)
    # HAProxy does not expose the check interval: HAProxy's default 2 s unless told
    assert HAProxyBackend(haproxy.stats_socket, "web", 300.0).timing().healthy_expected == 6.0
    lb.block("host-1")
    lb.finish_block("host-1")  # show stat hides the rise of a server in maintenance
    assert lb.timing().healthy_expected == pytest.approx(0.3)

    slow = start_haproxy(check_inter_ms=100, rise=5)
    assert HAProxyBackend(slow.stats_socket, "web", 1.0, check_interval=10).timing().healthy_expected == 60


@pytest.mark.parametrize("call", ["block", "finish_block", "allow"])
def test_an_unknown_server_is_an_error_naming_the_servers(lb: HAProxyBackend, call: str) -> None:
    with pytest.raises(TrafficMisconfigured) as error:  # no retry helps: the engine fails at once
        getattr(lb, call)("host-9")
    assert (
        str(error.value) == "HAProxy backend 'web' has no server 'host-9' (servers: host-1, host-2, host-3)"
    )


def test_an_unknown_backend_is_an_error_naming_the_backends(haproxy: HAProxy) -> None:
    lb = HAProxyBackend(haproxy.stats_socket, "api", deregistration_delay=30.0)
    message = f"HAProxy at {haproxy.stats_socket} has no backend 'api' (backends: web)"
    for call in (lambda: lb.block("host-1"), lambda: lb.observe(["host-1"]), lb.timing):
        with pytest.raises(TrafficMisconfigured) as error:
            call()
        assert str(error.value) == message


def test_names_haproxy_would_not_accept_are_refused_before_anything_is_sent(
    haproxy: HAProxy, lb: HAProxyBackend
) -> None:
    with pytest.raises(TrafficError, match="cannot be a server of HAProxy backend 'web'"):
        lb.block("host-1; set server web/host-2 state maint")
    assert lb.observe(["host 2"]) == {"host 2": TargetObservation(TargetState.UNKNOWN)}
    assert lb.observe(HOSTS) == dict.fromkeys(HOSTS, IN_SERVICE)
    with pytest.raises(TrafficError, match="not a valid HAProxy backend name"):
        HAProxyBackend(haproxy.stats_socket, "web help", deregistration_delay=1.0)


@pytest.mark.parametrize("kind", ["unix", "unix-path", "tcp"])
def test_the_runtime_api_is_reached_by_unix_socket_or_tcp(
    haproxy: HAProxy, lb: HAProxyBackend, kind: str
) -> None:
    address = {
        "unix": haproxy.stats_socket,
        "unix-path": str(haproxy.socket_path),
        "tcp": haproxy.stats_address,
    }[kind]
    via = HAProxyBackend(address, "web", deregistration_delay=30.0, check_interval=0.1)

    via.block("host-2")

    assert state_of(via, "host-2").state is TargetState.DRAINING
    assert state_of(lb, "host-2").state is TargetState.DRAINING


def test_a_permission_refused_by_haproxy_is_an_error_with_its_answer(start_haproxy: StartHAProxy) -> None:
    port = free_port()
    haproxy = start_haproxy(extra_global=[f"stats socket ipv4@127.0.0.1:{port} level operator"])
    lb = HAProxyBackend(f"127.0.0.1:{port}", "web", deregistration_delay=30.0)
    assert state_of(lb, "host-1").state is not TargetState.UNKNOWN  # operators may look

    with pytest.raises(TrafficError) as error:
        lb.block("host-1")

    assert str(error.value).startswith(
        f"HAProxy at 127.0.0.1:{port} refused 'set server web/host-1 state drain'"
    )
    assert "Permission denied" in str(error.value)
    assert "DRAIN" not in haproxy.command("show stat web 4 -1")


def test_an_unreachable_socket_is_an_error_naming_it_and_the_command(tmp_path: Path) -> None:
    missing = f"unix:{tmp_path}/no.sock"
    with pytest.raises(TrafficError, match=f"HAProxy at {missing}: 'show servers state web' failed"):
        HAProxyBackend(missing, "web", 1.0).observe(["host-1"])
    closed = f"127.0.0.1:{free_port()}"
    with pytest.raises(TrafficError, match=f"HAProxy at {closed}: 'show servers state web' failed"):
        HAProxyBackend(closed, "web", 1.0).block("host-1")
    with pytest.raises(TrafficError, match="neither unix:/path nor host:port"):
        HAProxyBackend("haproxy.example", "web", 1.0)


def test_a_silent_socket_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(TrafficError, match=f"HAProxy at {address}: 'show info' failed: timed out"):
            RuntimeAPI(address, timeout=0.2).execute("show info")
        assert time.monotonic() - started < 2


def test_after_a_reload_observe_shows_the_configured_state_and_calls_apply_again(
    haproxy: HAProxy, lb: HAProxyBackend
) -> None:
    lb.block("host-1")
    lb.block("host-2")
    lb.finish_block("host-2")
    old_pid = haproxy.pid

    haproxy.reload()

    assert haproxy.pid != old_pid
    assert lb.observe(HOSTS) == dict.fromkeys(HOSTS, IN_SERVICE)  # runtime state is gone
    lb.block("host-1")
    lb.block("host-2")
    lb.finish_block("host-2")
    assert state_of(lb, "host-1").state is TargetState.DRAINING
    assert state_of(lb, "host-2").state is TargetState.OUT_OF_SERVICE
    assert answering_hosts(haproxy) == {"host-3"}


def test_observe_is_safe_from_several_threads(lb: HAProxyBackend) -> None:
    results: list[object] = []

    def observe() -> None:
        results.append(lb.observe(HOSTS))

    threads = [threading.Thread(target=observe) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [dict.fromkeys(HOSTS, IN_SERVICE)] * 8


# --- weighted shifting (canary/linear for server blue/green) -------------------------------------------
# host-1 and host-2 stand for the original fleet, host-3 for the replacement.

ORIGINAL, REPLACEMENT = ["host-1", "host-2"], ["host-3"]


def weights(haproxy: HAProxy) -> dict[str, int]:
    """The servers' weights as HAProxy reports them (``show servers state``: srv_uweight)."""
    lines = haproxy.command("show servers state web").splitlines()
    header = lines[1].lstrip("#").split()
    rows = [dict(zip(header, line.split(), strict=False)) for line in lines[2:] if line.strip()]
    return {row["srv_name"]: int(row["srv_uweight"]) for row in rows}


def replacement_share(haproxy: HAProxy, requests: int) -> float:
    """The percentage of ``requests`` consecutive requests that the replacement server answered."""
    with httpx.Client(base_url=haproxy.url, timeout=10) as client:  # HAProxy balances each request
        answered = [client.get("/").raise_for_status().text.split()[0] for _ in range(requests)]
    return 100 * sum(host in REPLACEMENT for host in answered) / requests


@pytest.mark.parametrize(
    ("percent", "original_weight", "replacement_weight"),
    [(10, 9, 2), (25, 3, 2), (50, 1, 2), (100, 0, 1), (0, 1, 0)],
)
def test_shift_sets_weights_that_split_requests_by_the_share(
    haproxy: HAProxy, lb: HAProxyBackend, percent: int, original_weight: int, replacement_weight: int
) -> None:
    """Two originals and one replacement: 10 % is weights 9, 9 and 2 (2 of 20). Roundrobin with weights is
    deterministic, so 200 requests (whole cycles of the weights) show the share within a request or two."""
    lb.shift(ORIGINAL, REPLACEMENT, percent)
    lb.shift(ORIGINAL, REPLACEMENT, percent)  # idempotent

    assert weights(haproxy) == {
        "host-1": original_weight,
        "host-2": original_weight,
        "host-3": replacement_weight,
    }
    assert lb.observe_shift(ORIGINAL, REPLACEMENT) == pytest.approx(percent)
    assert replacement_share(haproxy, 200) == pytest.approx(percent, abs=1.5)
    assert lb.observe(HOSTS) == dict.fromkeys(HOSTS, IN_SERVICE)  # weights change no server's state


def test_a_linear_shift_step_by_step(haproxy: HAProxy, lb: HAProxyBackend) -> None:
    """Each step of a shift (30 % linear: 30, 60, 90, 100) changes what clients see at once."""
    assert lb.observe_shift(ORIGINAL, REPLACEMENT) == pytest.approx(100 / 3)  # the configuration's weights
    for percent in (0, 30, 60, 90, 100):
        lb.shift(ORIGINAL, REPLACEMENT, percent)
        assert lb.observe_shift(ORIGINAL, REPLACEMENT) == pytest.approx(percent, abs=0.5)
        assert replacement_share(haproxy, 200) == pytest.approx(percent, abs=2)


def test_shift_leaves_a_drained_server_drained(haproxy: HAProxy, lb: HAProxyBackend) -> None:
    lb.block("host-1")
    lb.shift(ORIGINAL, REPLACEMENT, 10)

    assert state_of(lb, "host-1").state is TargetState.DRAINING
    assert weights(haproxy)["host-1"] == 9
    # host-1 takes nothing new: host-2 (weight 9) and host-3 (weight 2) share the requests 9:2.
    assert replacement_share(haproxy, 110) == pytest.approx(100 * 2 / 11, abs=2)


def test_after_a_reload_the_shift_is_gone_and_applies_again(haproxy: HAProxy, lb: HAProxyBackend) -> None:
    lb.shift(ORIGINAL, REPLACEMENT, 10)
    haproxy.reload()

    assert weights(haproxy) == dict.fromkeys(HOSTS, 1)  # the configuration's weights
    assert lb.observe_shift(ORIGINAL, REPLACEMENT) == pytest.approx(100 / 3)
    lb.shift(ORIGINAL, REPLACEMENT, 10)
    assert lb.observe_shift(ORIGINAL, REPLACEMENT) == pytest.approx(10)


@pytest.mark.parametrize(
    ("original", "replacement", "percent", "message"),
    [
        (["host-1"], ["host-9"], 10, "has no server 'host-9' (servers: host-1, host-2, host-3)"),
        (["host-1", "host-3"], ["host-3"], 10, "host-3 cannot be both"),
        (["host-1"], [], 10, "no replacement servers"),
        ([], ["host-3"], 90, "no original servers"),
        (["host 1"], ["host-3"], 10, "cannot be a server"),
    ],
)
def test_shifts_that_cannot_work_are_refused_before_any_weight_changes(
    haproxy: HAProxy,
    lb: HAProxyBackend,
    original: list[str],
    replacement: list[str],
    percent: float,
    message: str,
) -> None:
    with pytest.raises(TrafficMisconfigured, match=re.escape(message)):
        lb.shift(original, replacement, percent)
    assert weights(haproxy) == dict.fromkeys(HOSTS, 1)


def test_an_empty_side_that_takes_nothing_is_fine(haproxy: HAProxy, lb: HAProxyBackend) -> None:
    lb.shift([], REPLACEMENT, 100)
    assert weights(haproxy) == {"host-1": 1, "host-2": 1, "host-3": 1}  # only host-3 is named
    assert lb.observe_shift([], REPLACEMENT) == 100
    lb.shift(ORIGINAL, [], 0)
    assert lb.observe_shift(ORIGINAL, []) == 0


# --- parsing HAProxy 2.6's answers (captured from haproxy 2.6.12) ----------------------------------------
# host-1 ready with one session, host-2 draining with one session, host-3 in maintenance, host-4 failing
# its checks, host-5 without checks ("no-check"), host-6 with checks disabled ("disable health").

SERVERS_STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 web 1 host-1 127.0.0.1 2 0 1 1 0 15 3 3 6 0 0 0 - 36983 - 0 0 - - 0
3 web 2 host-2 127.0.0.1 2 8 1 1 0 15 3 3 6 0 0 0 - 34045 - 0 0 - - 0
3 web 3 host-3 127.0.0.1 0 1 1 1 0 15 3 0 14 0 0 0 - 34855 - 0 0 - - 0
3 web 4 host-4 127.0.0.1 0 0 1 1 0 17 2 0 6 0 0 0 - 46361 - 0 0 - - 0
3 web 5 host-5 127.0.0.1 2 0 1 1 0 1 0 2 0 0 0 0 - 46385 - 0 0 - - 0
3 web 6 host-6 127.0.0.1 2 0 1 1 0 15 3 3 2 0 0 0 - 34273 - 0 0 - - 0
4 api 1 host-1 127.0.0.1 0 1 1 1 0 15 3 0 14 0 0 0 - 36983 - 0 0 - - 0

"""  # noqa: E501

STAT = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,
fe,FRONTEND,,,2,2,9984,2,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,2,,,,0,0,0,0,0,0,,0,2,2,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,0,2,2,0,0,0,0,,,0,0,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,2,2,2,0,0,0,0,
web,host-1,0,0,1,1,,1,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,0,0,,1,3,1,,0,,2,1,,1,L7OK,200,1,0,0,0,0,0,0,,,,0,0,0,,,,,0,,,0,0,0,0,,,,Layer7 check passed,,2,2,3,,,,127.0.0.1:36983,,http,,,,,,,,0,1,0,,,0,,0,0,0,0,0,0,0,1,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
web,host-2,0,0,1,1,,1,0,0,,0,,0,0,0,0,DRAIN,1,1,0,0,0,0,0,,1,3,2,,0,,2,1,,1,L7OK,200,3,0,0,0,0,0,0,,,,0,0,0,,,,,0,,,0,0,0,0,,,,Layer7 check passed,,2,2,3,,,,127.0.0.1:34045,,http,,,,,,,,0,1,0,,,0,,0,0,0,0,0,0,0,1,2,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
web,host-3,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1,1,0,0,1,0,0,,1,3,3,,0,,2,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,127.0.0.1:34855,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
web,host-4,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,0,0,,1,3,4,,0,,2,0,,0,L7STS,503,3,0,0,0,0,0,0,,,,0,0,0,,,,,-1,Service Unavailable,,0,0,0,0,,,,Layer7 wrong status,,2,2,0,,,,127.0.0.1:46361,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
web,host-5,0,0,0,0,,0,0,0,,0,,0,0,0,0,no check,1,1,0,,,0,,,1,3,5,,0,,2,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,127.0.0.1:46385,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
web,host-6,0,0,0,0,,0,0,0,,0,,0,0,0,0,no check,1,1,0,,,0,,,1,3,6,,0,,2,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,127.0.0.1:34273,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
web,BACKEND,0,0,2,2,999,2,0,0,0,0,,0,0,0,0,UP,4,4,0,,0,1,0,,1,3,0,,2,,1,2,,2,,,,0,0,0,0,0,0,,,,2,0,0,0,0,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,http,roundrobin,,,,,,,2,0,0,0,0,,,0,0,0,0,0,,,,,4,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,2,2,2,0,0,0,0,

"""  # noqa: E501


@pytest.mark.parametrize(
    ("server", "state", "sessions", "status", "rise"),
    [
        ("host-1", TargetState.IN_SERVICE, 1, "UP", 2),
        ("host-2", TargetState.DRAINING, 1, "DRAIN", 2),
        ("host-3", TargetState.OUT_OF_SERVICE, 0, "MAINT", None),
        ("host-4", TargetState.UNHEALTHY, 0, "DOWN", 2),
        ("host-5", TargetState.IN_SERVICE, 0, "no check", None),
        ("host-6", TargetState.IN_SERVICE, 0, "no check", None),
    ],
)
def test_parsing_captured_answers(
    server: str, state: TargetState, sessions: int, status: str, rise: int | None
) -> None:
    servers = parse_servers_state(SERVERS_STATE, "web")
    stats = parse_stat(STAT, "web")

    assert list(servers) == list(stats) == [f"host-{n}" for n in range(1, 7)]  # no FRONTEND/BACKEND, no api
    assert target_state(servers[server]) is state
    assert stats[server].sessions == sessions
    assert stats[server].status == status
    assert stats[server].check_rise == rise


def test_parsing_reads_columns_by_the_header() -> None:
    text = "1\n# be_name srv_name srv_new_column srv_admin_state srv_op_state\nweb host-1 x 8 2\n"
    assert parse_servers_state(text, "web") == {"host-1": ServerState("host-1", 2, 8, 0)}
    assert parse_servers_state("1\n# be_id be_name srv_id srv_name\n", "web") == {}


@pytest.mark.parametrize("answer", ["Can't find backend.\n", "Permission denied\n", ""])
def test_parsing_refuses_answers_that_are_not_the_tables(answer: str) -> None:
    with pytest.raises(ValueError):
        parse_servers_state(answer, "web")
    with pytest.raises(ValueError):
        parse_stat(answer, "web")


@pytest.mark.parametrize(
    ("op_state", "admin_state", "state"),
    [
        (2, 0x00, TargetState.IN_SERVICE),  # running, ready
        (2, 0x40, TargetState.IN_SERVICE),  # FQDN changed at runtime: not a maintenance flag
        (0, 0x00, TargetState.UNHEALTHY),  # stopped: checks fail
        (1, 0x00, TargetState.UNHEALTHY),  # starting (slowstart)
        (3, 0x00, TargetState.UNHEALTHY),  # stopping (e.g. http-check disable-on-404)
        (2, 0x08, TargetState.DRAINING),  # forced drain
        (0, 0x08, TargetState.DRAINING),  # forced drain, checks failing
        (2, 0x10, TargetState.DRAINING),  # drain inherited from a tracked server
        (0, 0x01, TargetState.OUT_OF_SERVICE),  # forced maintenance
        (0, 0x09, TargetState.OUT_OF_SERVICE),  # maintenance wins over drain
        (0, 0x02, TargetState.OUT_OF_SERVICE),  # maintenance inherited from a tracked server
        (0, 0x05, TargetState.OUT_OF_SERVICE),  # "disabled" in the configuration
        (0, 0x20, TargetState.OUT_OF_SERVICE),  # address not resolved
    ],
)
def test_target_state_from_haproxy_states(op_state: int, admin_state: int, state: TargetState) -> None:
    assert target_state(ServerState("s", op_state, admin_state, 6)) is state
