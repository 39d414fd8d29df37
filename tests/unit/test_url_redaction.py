"""A node URL never reaches a log line or an error message with its path or user part, where
providers put their API keys: log fields named like a URL are shown as scheme://host:port, and the
RPC client's errors name the node the same way."""

from __future__ import annotations

import io
import json
import socket

import pytest
import structlog

from keeper.chain.rpc import JsonRpc
from keeper.errors import HttpStatusError, TransientError
from keeper.logs import configure_logging, get_logger

KEYED = "https://opt-mainnet.example.com/v2/SECRETKEY123"


def test_log_fields_named_like_a_url_lose_their_path_and_user_part() -> None:
    stream = io.StringIO()
    configure_logging("INFO", json_lines=True, stream=stream)
    try:
        get_logger("test").info("keeper.started", rpc_url=KEYED, to_url="wss://u:pw@node.example.com:8546/ws",
                                ws_url="ws://127.0.0.1:8545", urls=3)
    finally:
        structlog.reset_defaults()
    event = json.loads(stream.getvalue())
    assert "SECRETKEY123" not in stream.getvalue() and "pw" not in stream.getvalue()
    assert event["rpc_url"] == "https://opt-mainnet.example.com/..."
    assert event["to_url"] == "wss://node.example.com:8546/..."
    assert event["ws_url"] == "ws://127.0.0.1:8545" and event["urls"] == 3  # nothing hidden: unchanged


def test_an_unreachable_node_is_named_without_its_key() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens
    rpc = JsonRpc(f"http://127.0.0.1:{port}/v3/SECRETKEY123", timeout_s=2.0)
    with pytest.raises(TransientError) as raised:
        rpc.call("eth_chainId")
    assert f"RPC http://127.0.0.1:{port}/... unreachable" in str(raised.value)
    assert "SECRETKEY123" not in str(raised.value)


def test_an_http_error_status_is_carried_with_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The start-up tells a refusing node (401) from a busy one by the status the client keeps."""
    import requests

    rpc = JsonRpc("https://node.example.com/v2/SECRETKEY123")
    response = requests.Response()
    response.status_code = 401

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise requests.HTTPError("401 Client Error", response=response)

    monkeypatch.setattr(rpc.provider, "make_request", refuse)
    with pytest.raises(HttpStatusError) as raised:
        rpc.call("eth_chainId")
    assert raised.value.status == 401 and raised.value.refuses
    assert str(raised.value) == "RPC https://node.example.com/... answered HTTP 401"


def test_a_refusing_status_is_not_asked_again_and_the_error_survives_a_process_pool(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    import requests

    from keeper.chain.retry import RetryingJsonRpc

    rpc = RetryingJsonRpc("https://node.example.com/v2/SECRETKEY123", attempts=6, sleep=lambda _s: None)
    response = requests.Response()
    response.status_code = 404
    asked = []

    def refuse(*_args: object, **_kwargs: object) -> None:
        asked.append(1)
        raise requests.HTTPError("404 Client Error", response=response)

    monkeypatch.setattr(rpc.provider, "make_request", refuse)
    with pytest.raises(HttpStatusError) as raised:
        rpc.call("eth_chainId")
    assert len(asked) == 1
    copy = pickle.loads(pickle.dumps(raised.value))
    assert (type(copy), str(copy), copy.status) == (HttpStatusError, str(raised.value), 404)


def test_urllib3_s_quoted_path_is_cut_from_an_unreachable_node_s_reason() -> None:
    from http.server import BaseHTTPRequestHandler, HTTPServer
    import threading

    server = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)  # plain HTTP: an https client fails its handshake
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rpc = JsonRpc(f"https://127.0.0.1:{server.server_port}/v2/SECRETKEY123", timeout_s=5.0)
        with pytest.raises(TransientError) as raised:
            rpc.call("eth_chainId")
    finally:
        server.shutdown()
    assert "unreachable" in str(raised.value) and "SECRETKEY123" not in str(raised.value)


@pytest.mark.parametrize("echoed", [
    "error sending request for url (http://127.0.0.1/v2/SECRETKEY123)",  # anvil drops the default port
    "Could not connect to: wss://node.example.com/ws/SECRETKEY123. Retries exceeded",
    "failed: https://127.0.0.1:9/?apikey=SECRETKEY123, then gave up",
    "HTTP://LOCALHOST:9/v2/SECRETKEY123",
])
def test_a_url_inside_any_text_is_cut_to_its_host(echoed: str) -> None:
    from keeper.logs import redact_urls

    assert "SECRETKEY123" not in redact_urls(echoed)
    stream = io.StringIO()
    configure_logging("INFO", json_lines=True, stream=stream)
    try:
        get_logger("test").warning("heads.ws_down", reason=echoed, error=echoed)
    finally:
        structlog.reset_defaults()
    assert "SECRETKEY123" not in stream.getvalue() and "heads.ws_down" in stream.getvalue()


def test_the_rpc_errors_survive_a_process_pool() -> None:
    import pickle

    from keeper.errors import RpcError, TransientRpcError, TxRevertedError

    for error in (RpcError("eth_call", -32000, "execution reverted", "0x08c379a0"),
                  TransientRpcError("eth_call", -32005, "limit exceeded"), TxRevertedError("open ETH", "CH_F0S", "0xab")):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error) and vars(copy) == vars(error)


@pytest.mark.parametrize(("text", "shown"), [
    # the text around a URL is the sentence's, not the URL's: kept as it was
    ("--rpc-url RPC https://127.0.0.1:18690: unreachable", "--rpc-url RPC https://127.0.0.1:18690: unreachable"),
    ("Could not connect to: wss://node.example.com:8546. Retries", "Could not connect to: wss://node.example.com:8546. Retries"),
    # a message's own example is a URL with nothing to hide
    ("not a node URL (expected scheme http or https, e.g. http://127.0.0.1:8545): 'localhost:8545'",
     "not a node URL (expected scheme http or https, e.g. http://127.0.0.1:8545): 'localhost:8545'"),
    # a pasted password holding "/", "#" or "?": the user part ends at the last "@"
    ("cannot reach http://user:pa/ss@host.com/x", "cannot reach http://host.com/..."),
    ("https://u:s3cr3t#x@node.example.com", "https://node.example.com/..."),
    # a path with a comma; a host followed by something no host holds
    ("https://host.example/v2/abc,def then", "https://host.example/... then"),
    ("https://host.example;SECRETKEY123", "<not shown: not a URL>"),
    ("https://host.example\\SECRETKEY123", "<not shown: not a URL>"),
    # a URL a parser refuses still loses its secret part, and keeps its host
    ("RPC http://127.0.0.1:99999/v2/SECRETKEY123 unreachable", "RPC http://127.0.0.1:99999/... unreachable"),
    ("at http://[::1]:8545/v2/SECRETKEY123.", "at http://[::1]:8545/...."),
    ("https://host.example/p?x[0]=SECRETKEY123 then", "https://host.example/... then"),
    ("wss://SECRETKEY123@[::1]:3/", "wss://[::1]:3/..."),
])
def test_a_url_in_text_is_cut_to_its_host_and_the_sentence_around_it_is_kept(text: str, shown: str) -> None:
    from keeper.logs import redact_urls

    assert redact_urls(text) == shown
