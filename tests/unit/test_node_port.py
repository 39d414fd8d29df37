"""A node is never started on a port something already answers on: the start-up poll would take
the other node's answer for the new one's (and a devnet would deploy onto someone else's chain)."""

from __future__ import annotations

import socket

import pytest

from keeper.devnet.node import AnvilNode, port_taken
from keeper.errors import FatalError


def test_a_taken_port_is_refused_before_anything_starts() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        assert port_taken(port)
        node = AnvilNode(port=port)
        with pytest.raises(FatalError, match=f"port {port} on 127.0.0.1 is in use"):
            node.start()
        assert node.process is None  # no anvil was spawned
    assert not port_taken(port)


def test_a_setpriv_try_that_could_not_run_is_tried_again_next_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import keeper.devnet.node as node

    answers = iter([None, ("setpriv", "--pdeathsig", "TERM", "--")])
    monkeypatch.setattr(node, "_SETPRIV_PREFIX", None)
    monkeypatch.setattr(node.sys, "platform", "linux")
    monkeypatch.setattr(node, "_try_setpriv", lambda: next(answers))
    assert node.parent_death_prefix() == []  # the try failed (EAGAIN, a timeout): no answer kept
    assert node.parent_death_prefix() == ["setpriv", "--pdeathsig", "TERM", "--"]
    assert node.parent_death_prefix() == ["setpriv", "--pdeathsig", "TERM", "--"]  # kept: not tried a third time
