"""The pipelined backtest's basis statistics (keeper/history/basis_answers.py): the worker's
answers, replayed by the main process's stand-in, are the serial BasisHistory's numbers."""

from __future__ import annotations

import random

import numpy as np
import pytest

from keeper.basis_history import BasisHistory
from keeper.errors import KeeperError
from keeper.history.basis_answers import AnsweredBasisHistory, answer_of

KEYS = [("ETH", "uniswap_v3"), ("ETH", "uniswap_v2"), ("BTC", "uniswap_v3")]


def _basis(rng: random.Random, block: int) -> float:
    return rng.choice([0.0, -0.0, 3.25, rng.gauss(0, 4), rng.gauss(0, 4), 80.0 if block % 97 == 0 else 1.5])


@pytest.mark.parametrize(("backwards_at", "engine_computes"), [(None, True), (2_500, True), (None, False)])
def test_the_stand_in_gives_the_serial_historys_z_scores_and_statistics(backwards_at: int | None,
                                                                        engine_computes: bool) -> None:
    # Given a serial history, and a worker's history whose answers feed the stand-in, over 3,000
    # blocks of irregular spacing (windows of 5 to several hundred observations; the oldest values
    # dropped as they expire), and, in one run, a timestamp going backwards (the brute-force path);
    # in another the engine takes the worker's signals and never asks the stand-in for a z-score
    rng = random.Random(11)
    serial, worker, stand_in = BasisHistory(600, 5), BasisHistory(600, 5, windows=False), AnsweredBasisHistory(600, 5)
    timestamp, compared, kept = 10_000, 0, []
    for block in range(1, 3_000):
        timestamp += -30 if block == backwards_at else rng.choice([1, 2, 2, 12, 45])
        basis = {key: _basis(rng, block) for key in KEYS}
        # the worker: the engine's calls, in its order (every z-score, then the statistics read)
        zscores = {key: worker.zscore_then_record(*key, block, basis[key], timestamp) for key in KEYS}
        stand_in.load(block, {key: answer_of(worker, *key, block, timestamp, basis[key], zscores[key]) for key in KEYS})
        # when the engine asks both, the same way
        for key in KEYS:
            expected = serial.zscore_then_record(*key, block, basis[key], timestamp)
            assert (stand_in.zscore_then_record(*key, block, basis[key], timestamp) if engine_computes
                    else zscores[key]) == expected
        for key in KEYS:
            mine, theirs = stand_in.stats(*key, block, timestamp), serial.stats(*key, block, timestamp)
            assert mine == theirs  # centre, scale, samples, half-life
            if theirs is not None:
                assert mine.spacing_s == theirs.spacing_s
                assert np.array_equal(np.asarray(mine.window_bps), np.asarray(theirs.window_bps))
                assert not np.asarray(mine.window_bps).flags.writeable
                compared += 1
                if block % 50 == 0:
                    kept.append((mine.window_bps, np.array(mine.window_bps)))
    assert compared > 8_000
    # and every window handed out is still what it was, thousands of blocks (and compactions) later
    assert len(kept) > 100 and all(np.array_equal(window, copy) for window, copy in kept)


def test_a_basis_the_worker_did_not_answer_is_an_error() -> None:
    worker, stand_in = BasisHistory(600, 2, windows=False), AnsweredBasisHistory(600, 2)
    zscore = worker.zscore_then_record("ETH", "uniswap_v3", 7, 1.25, 100)
    stand_in.load(7, {("ETH", "uniswap_v3"): answer_of(worker, "ETH", "uniswap_v3", 7, 100, 1.25, zscore)})
    with pytest.raises(KeeperError, match="basis at block 7 is 1.5 bps, the snapshot worker's 1.25 bps"):
        stand_in.zscore_then_record("ETH", "uniswap_v3", 7, 1.5, 100)
    with pytest.raises(KeeperError, match="no basis statistics from the snapshot worker for ETH uniswap_v3 at block 8"):
        stand_in.stats("ETH", "uniswap_v3", 8, 112)
    with pytest.raises(KeeperError, match="for BTC uniswap_v3 at block 7"):
        stand_in.zscore_then_record("BTC", "uniswap_v3", 7, 1.25, 100)

