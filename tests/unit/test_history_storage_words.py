"""The backtest's recorded storage reads: the collector's eth_getStorageAt requests (Perp's stored
tick band) are answered with the words recorded at that block, in the order asked, or not at all
when any is missing (as the live collector, whose batch failed, has none)."""

from __future__ import annotations

from keeper.history.replay import RecordedMulticall, storage_read_key
from keeper.history.store import BlockRecord
from keeper.venues import perp_v2

EXCHANGE = "0x" + "ab" * 20
BASES = ("0x" + "01" * 20, "0x" + "02" * 20)


def _record(block: int, words: dict[tuple[str, str], bytes]) -> BlockRecord:
    reads = [(storage_read_key(("eth_getStorageAt", [EXCHANGE, slot, hex(block)])), word)
             for (_, slot), word in words.items()]
    return BlockRecord(block, 1_700_000_000 + block, b"h", b"p", 1, 2, 3, None, {}, reads)  # type: ignore[arg-type]


def _requests(block: int) -> list[tuple[str, list[object]]]:
    return [q for base in BASES for q in perp_v2.band_storage_requests(EXCHANGE, base, block)]


def test_given_each_markets_band_request_then_it_reads_the_tick_and_timestamp_slots_at_the_block() -> None:
    for base in BASES:
        assert perp_v2.band_storage_requests(EXCHANGE, base, 300) == [
            ("eth_getStorageAt", [EXCHANGE, perp_v2.mapping_slot(base, perp_v2.EXCHANGE_LAST_UPDATED_TICK_SLOT), "0x12c"]),
            ("eth_getStorageAt", [EXCHANGE, perp_v2.mapping_slot(base, perp_v2.EXCHANGE_LAST_TICK_UPDATED_TIMESTAMP_SLOT),
                                  "0x12c"])]


def test_given_recorded_words_when_asked_block_after_block_then_each_blocks_own_words_in_the_order_asked() -> None:
    multicall = RecordedMulticall("0x" + "cd" * 20)
    slots = [(base, str(q[1][1])) for base in BASES for q in perp_v2.band_storage_requests(EXCHANGE, base, 0)]
    for block in (10, 11, 12):
        words = {slot: (block * 100 + i).to_bytes(32, "big") for i, slot in enumerate(slots)}
        multicall.load(_record(block, dict(reversed(words.items()))))  # recorded in another order
        got = multicall.storage_words(_requests(block))
        assert got == ["0x" + w.hex() for w in words.values()]
        assert [perp_v2.decode_band_storage(*got[i:i + 2]) for i in (0, 2)] == [
            (block * 100, block * 100 + 1), (block * 100 + 2, block * 100 + 3)]


def test_given_a_word_missing_or_another_request_then_no_words_at_all() -> None:
    multicall = RecordedMulticall("0x" + "cd" * 20)
    slots = [(base, str(q[1][1])) for base in BASES for q in perp_v2.band_storage_requests(EXCHANGE, base, 0)]
    words = {slot: (7).to_bytes(32, "big") for slot in slots[:-1]}  # the last market's timestamp not recorded
    multicall.load(_record(5, words))
    assert multicall.storage_words(_requests(5)) == []
    assert multicall.storage_words(_requests(5)[:3]) == ["0x" + (7).to_bytes(32, "big").hex()] * 3
    assert multicall.storage_words([("eth_getBalance", [EXCHANGE, "0x5"])]) == []
