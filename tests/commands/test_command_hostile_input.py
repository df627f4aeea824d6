"""Hostile requests to the command service, signed with a registered instance's own key: deeply nested
JSON is a 400 SerializationException (not a RecursionError and a 500), and a body declared larger than
any valid request is refused before it is read; either way the server logs no traceback and goes on."""

from __future__ import annotations

import socket

from command_agents import create_fleet

from support.server import ServerProcess
from support.signing import send_json

TARGET = "CodeDeployCommandService_v20141006"


def test_deeply_nested_json_is_a_serialization_error(command_server: ServerProcess) -> None:
    agent = create_fleet(command_server).add_instance()
    for nested in (b"[" * 1500 + b"]" * 1500, b'{"a":' * 1200 + b"1" + b"}" * 1200, b"[" * 100 + b"]" * 100):
        response = send_json(
            command_server,
            "PollHostCommand",
            body=nested,
            target=f"{TARGET}.PollHostCommand",
            access_key=agent.access_key,
            secret_key=agent.secret_key,
            service="codedeploy-commands",
        )
        assert response.status_code == 400, response.text
        assert response.json()["__type"] == "SerializationException"
        assert "nested too deeply" in response.json()["message"]
    assert "Traceback" not in command_server.log_text()
    assert agent.poll() is None  # and the service still answers the instance


def test_a_body_declared_too_large_is_refused_before_it_is_read(command_server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", command_server.port), timeout=10) as connection:
        connection.sendall(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
            + f"X-Amz-Target: {TARGET}.PutHostCommandComplete\r\n".encode()
            + b"Content-Length: 8388608\r\n\r\n{"  # 8 MiB promised, one byte sent
        )
        received = b""
        while chunk := connection.recv(65536):  # the server closes the connection after its answer
            received += chunk
        answer = received.decode("latin-1")
    status, _, rest = answer.partition("\r\n")
    assert status == "HTTP/1.1 413 Request Entity Too Large", answer
    assert "RequestEntityTooLargeException" in rest
    assert "connection: close" in rest.lower()
    agent = create_fleet(command_server).add_instance()
    assert agent.poll() is None  # the service is unharmed
    assert "Traceback" not in command_server.log_text()
