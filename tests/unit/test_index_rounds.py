"""The index volatility from an oracle's past rounds (keeper/index_rounds.py): the rounds read back
from the latest, where the read stops, and the keeper's estimator over them."""

from __future__ import annotations

import pytest
from eth_abi import encode

from keeper.chain.multicall import Call, CallResult
from keeper.errors import RpcError
from keeper.index_rounds import fetch_rounds_sigma, sigma_from_rounds
from keeper.index_volatility import IndexHistory
from keeper.venues.chainlink import OracleRound, fetch_recent_rounds

AGGREGATOR = "0x" + "ab" * 20
T = 900.0


def round_bytes(round_id: int, answer: int, updated_at: int) -> bytes:
    return encode(["uint80", "int256", "uint256", "uint256", "uint80"], [round_id, answer, updated_at, updated_at, round_id])


class FakeAggregator:
    """A Multicall stand-in over an aggregator's rounds {id: (answer, updatedAt)}; ids in `reverting` revert."""

    def __init__(self, rounds: dict[int, tuple[int, int]], latest: int, reverting: frozenset[int] = frozenset()) -> None:
        self.rounds, self.latest, self.reverting = rounds, latest, reverting
        self.batches: list[list[Call]] = []

    def run_calls(self, calls: list[Call], block: int | str = "latest") -> list[CallResult]:
        assert block == 77  # pinned to the snapshot's block
        self.batches.append(calls)
        return [self._answer(c) for c in calls]

    def _answer(self, call: Call) -> CallResult:
        round_id = self.latest if call.label.endswith("latestRoundData") else int.from_bytes(call.call_data[4:], "big")
        if round_id in self.reverting:
            return CallResult(False, b"")
        answer, updated_at = self.rounds.get(round_id, (0, 0))
        return CallResult(True, round_bytes(round_id, answer, updated_at))


def test_rounds_are_read_newest_first_in_two_batches_and_bounded() -> None:
    # Given an aggregator with rounds 1..10, a minute apart
    fake = FakeAggregator({i: (3000 + i, 60 * i) for i in range(1, 11)}, latest=10)
    # When 4 rounds are read
    rounds = fetch_recent_rounds(fake, AGGREGATOR, 77, 4)  # type: ignore[arg-type]
    # Then they are the latest and the three before it, in one latestRoundData call and one batch
    assert [r.round_id for r in rounds] == [10, 9, 8, 7]  # type: ignore[union-attr]
    assert [len(b) for b in fake.batches] == [1, 3]


@pytest.mark.parametrize("gap, expected", [
    ({"missing": 6}, [10, 9, 8, 7]),      # an empty round (before the feed's first, or a proxy's phase)
    ({"reverting": 8}, [10, 9]),          # a round the aggregator refuses
    ({"newer": 9}, [10]),                 # a round newer than the one after it
])
def test_the_read_stops_before_the_first_round_that_is_not_an_older_answer(gap: dict[str, int], expected: list[int]) -> None:
    rounds = {i: (3000 + i, 60 * i) for i in range(1, 11)}
    if "missing" in gap:
        del rounds[gap["missing"]]
    if "newer" in gap:
        rounds[gap["newer"]] = (3000, 10_000)
    fake = FakeAggregator(rounds, latest=10, reverting=frozenset({gap.get("reverting", -1)}))
    got = fetch_recent_rounds(fake, AGGREGATOR, 77, 64)  # type: ignore[arg-type]
    assert [r.round_id for r in got] == expected  # type: ignore[union-attr]


def test_an_unreadable_aggregator_gives_no_estimate_and_says_why() -> None:
    # Given latestRoundData reverting, or the node failing the call
    class Failing(FakeAggregator):
        def run_calls(self, calls: list[Call], block: int | str = "latest") -> list[CallResult]:
            raise RpcError("eth_call", -32000, "execution reverted")

    refusing = FakeAggregator({}, latest=5, reverting=frozenset({5}))
    for multicall, reason in ((refusing, "latestRoundData reverted"), (Failing({}, 0), "unreadable")):
        # When the estimate is asked for
        estimate = fetch_rounds_sigma(multicall, AGGREGATOR, 77, 1_000, T)  # type: ignore[arg-type]
        # Then there is none, with the reason
        assert estimate.sigma_per_sqrt_s is None and estimate.rounds_read == 0
        assert reason in (estimate.reason or "")


def test_the_estimate_is_the_keepers_over_the_rounds_and_the_snapshots_time() -> None:
    # Given five rounds a minute apart and the snapshot 30 s after the last
    rounds = [OracleRound(i, answer, 60 * i) for i, answer in zip(range(5, 0, -1), (3090, 3000, 3030, 2990, 3000))]
    estimate = sigma_from_rounds(rounds, 330, T)
    # Then it is what IndexHistory estimates from the same records, the snapshot's time the newest
    history = IndexHistory()
    for i, (t, answer) in enumerate([(60, 3000), (120, 2990), (180, 3030), (240, 3000), (300, 3090), (330, 3090)]):
        history.record_price("ETH", i, t, answer)
    assert estimate.sigma_per_sqrt_s == pytest.approx(history.sigma_per_sqrt_s("ETH", T), rel=1e-12)
    assert estimate.rounds_read == estimate.rounds_used == 5 and estimate.reason is None


def test_two_rounds_at_one_time_count_once_as_the_newest() -> None:
    # Given rounds 3 and 4 posted at the same time (one block shows only the last)
    rounds = [OracleRound(5, 3000, 240), OracleRound(4, 3100, 180), OracleRound(3, 2900, 180),
              OracleRound(2, 3000, 120), OracleRound(1, 3000, 60)]
    same = sigma_from_rounds(rounds, 240, T)
    without = sigma_from_rounds([r for r in rounds if r.round_id != 3], 240, T)
    # Then the estimate is that of the rounds without the older of the two
    assert same.sigma_per_sqrt_s == without.sigma_per_sqrt_s and same.rounds_used == 4


@pytest.mark.parametrize("count", [0, 1, 2])
def test_too_few_rounds_give_no_estimate(count: int) -> None:
    rounds = [OracleRound(i, 3000 + 10 * i, 60 * i) for i in range(count, 0, -1)]
    estimate = sigma_from_rounds(rounds, 60 * count + 30, T)
    assert estimate.sigma_per_sqrt_s is None and estimate.rounds_used == count
    assert estimate.reason is not None


def test_three_rounds_and_the_snapshot_time_are_enough() -> None:
    rounds = [OracleRound(3, 3030, 180), OracleRound(2, 2970, 120), OracleRound(1, 3000, 60)]
    estimate = sigma_from_rounds(rounds, 240, T)
    assert estimate.sigma_per_sqrt_s is not None and estimate.sigma_per_sqrt_s > 0


def test_a_huge_bound_reads_only_the_rounds_that_exist() -> None:
    # Given rounds 1..10 and a bound far past them
    fake = FakeAggregator({i: (3000 + i, 60 * i) for i in range(1, 11)}, latest=10)
    rounds = fetch_recent_rounds(fake, AGGREGATOR, 77, 10**12)  # type: ignore[arg-type]
    # Then the batch asks for rounds 9..1 only
    assert [len(b) for b in fake.batches] == [1, 9] and len(rounds) == 10  # type: ignore[arg-type]


def test_no_valid_latest_round_is_unavailable_with_its_answer() -> None:
    fake = FakeAggregator({5: (0, 300)}, latest=5)
    estimate = fetch_rounds_sigma(fake, AGGREGATOR, 77, 1_000, T)  # type: ignore[arg-type]
    assert estimate.sigma_per_sqrt_s is None and "no valid round (answer 0" in (estimate.reason or "")
    assert len(fake.batches) == 1  # nothing read before it


def test_zero_rounds_read_nothing() -> None:
    fake = FakeAggregator({i: (3000 + i, 60 * i) for i in range(1, 11)}, latest=10)
    estimate = fetch_rounds_sigma(fake, AGGREGATOR, 77, 1_000, T, max_rounds=0)  # type: ignore[arg-type]
    assert estimate.sigma_per_sqrt_s is None and fake.batches == [] and "--index-rounds 0" in (estimate.reason or "")


def test_a_round_dated_after_the_snapshot_is_not_counted() -> None:
    # Given a newest round posted after the snapshot's time (ChainlinkPriceFeedV3 refuses it too)
    rounds = [OracleRound(5, 3300, 400), OracleRound(4, 3000, 240), OracleRound(3, 3030, 180),
              OracleRound(2, 2970, 120), OracleRound(1, 3000, 60)]
    with_future = sigma_from_rounds(rounds, 300, T)
    without = sigma_from_rounds(rounds[1:], 300, T)
    # Then the estimate is that of the others, read but not used
    assert with_future.sigma_per_sqrt_s == without.sigma_per_sqrt_s and with_future.rounds_read == 5
    assert with_future.rounds_used == 4
