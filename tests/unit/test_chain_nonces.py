"""Local nonce hand-out, resync from the chain, thread safety, and reading node errors."""

from __future__ import annotations

import threading

import pytest

from keeper.chain.nonces import RESYNC_KINDS, NonceAllocator, SendErrorKind, classify_send_error


class ChainNonce:
    def __init__(self, value: int) -> None:
        self.value = value
        self.fetches = 0

    def __call__(self) -> int:
        self.fetches += 1
        return self.value


def test_nonces_are_fetched_once_then_handed_out_locally() -> None:
    chain = ChainNonce(7)
    nonces = NonceAllocator(chain)
    assert nonces.peek() is None
    assert [nonces.next_nonce() for _ in range(4)] == [7, 8, 9, 10]
    assert chain.fetches == 1
    assert nonces.peek() == 11


def test_resync_takes_the_chain_count_but_not_below_the_floor() -> None:
    # Given 3 nonces handed out, then the node says they were wrong (another process used the key)
    chain = ChainNonce(0)
    nonces = NonceAllocator(chain)
    for _ in range(3):
        nonces.next_nonce()
    chain.value = 12
    assert nonces.resync() == 12
    assert nonces.next_nonce() == 12
    # A floor (nonces a pending-tx store still holds) wins over a lower chain count
    chain.value = 5
    assert nonces.resync(floor=9) == 9
    assert nonces.next_nonce() == 9


def test_release_gives_back_the_last_nonce_and_otherwise_forces_a_resync() -> None:
    chain = ChainNonce(20)
    nonces = NonceAllocator(chain)
    first, second = nonces.next_nonce(), nonces.next_nonce()
    nonces.release(second)
    assert nonces.next_nonce() == second
    # Releasing an earlier one would leave a gap: the next hand-out asks the chain
    chain.value = 21
    nonces.release(first)
    assert nonces.next_nonce() == 21
    assert chain.fetches == 2


def test_concurrent_hand_out_never_repeats_or_skips() -> None:
    chain = ChainNonce(100)
    nonces = NonceAllocator(chain)
    got: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        mine = [nonces.next_nonce() for _ in range(250)]
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == list(range(100, 2_100))
    assert chain.fetches == 1


@pytest.mark.parametrize(("message", "kind"), [
    ("nonce too low", SendErrorKind.NONCE_TOO_LOW),
    ("nonce too low: next nonce 5, tx nonce 4", SendErrorKind.NONCE_TOO_LOW),
    ("Nonce too high", SendErrorKind.NONCE_TOO_HIGH),
    ("replacement transaction underpriced", SendErrorKind.REPLACEMENT_UNDERPRICED),
    ("already known", SendErrorKind.ALREADY_KNOWN),
    ("transaction already imported", SendErrorKind.ALREADY_KNOWN),  # anvil
    ("max fee per gas less than block base fee", SendErrorKind.FEE_TOO_LOW),  # anvil, geth
    ("transaction underpriced", SendErrorKind.FEE_TOO_LOW),
    ("insufficient funds for gas * price + value", SendErrorKind.OTHER),
])
def test_node_errors_are_classified(message: str, kind: SendErrorKind) -> None:
    assert classify_send_error(message) is kind


def test_only_nonce_errors_trigger_a_resync() -> None:
    assert RESYNC_KINDS == {SendErrorKind.NONCE_TOO_LOW, SendErrorKind.NONCE_TOO_HIGH,
                            SendErrorKind.REPLACEMENT_UNDERPRICED}
