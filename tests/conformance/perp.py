"""The conformance suite every perp venue adapter passes (subclass it: see test_perp_v2.py).

- it declares itself a perp venue, registered under its name;
- its market state in a keeper snapshot equals independent contract reads (eth_call + eth-abi);
- its exact open and close quotes equal actual trades on anvil, to the wei (the trade's event),
  both directions, small and large;
- the facts it decodes from a trade's receipt (`receipt_facts`) equal the venue's event, read
  independently: the fee, for the trader only;
- bounds hold: a trade with its opposite-amount bound at the quote goes through, one wei tighter
  reverts.

A subclass names its adapter and supplies the venue-specific parts: the independent reads, the
fields of the adapter's state to compare, trades through the venue's own contracts, and the fill
its event reports."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from keeper.errors import TxRevertedError
from keeper.quotes import snapshot_price_band
from keeper.types import PERP_VENUES, PerpMarketState, Unavailable
from keeper.venues.adapter import PerpVenueAdapter
from keeper.venues.perp_v2_math import PerpQuote
from keeper.venues.registry import PERP_ADAPTERS

from .chain import keeper_snapshot
from .reads import assert_plans_its_own_reads
from .conftest import Devnet

MARKETS = ("ETH", "BTC")
NOTIONALS_USD = (50, 20_000)  # a small trade and a large one


class PerpVenueConformance:
    adapter: ClassVar[PerpVenueAdapter]

    # ------------------------------------------------------------------ the venue's own parts
    def independent_state(self, d: Devnet, market: str, block: int) -> dict[str, Any]:
        raise NotImplementedError

    def adapter_state(self, state: PerpMarketState) -> dict[str, Any]:
        raise NotImplementedError

    def open(self, d: Devnet, trader: str, market: str, is_short: bool, amount_x18: int, bound_x18: int) -> dict[str, Any]:
        """Short: sell exactly `amount_x18` base for at least `bound_x18` quote; long: buy exactly
        `amount_x18` base for at most `bound_x18` quote. Returns the receipt."""
        raise NotImplementedError

    def close(self, d: Devnet, trader: str, market: str, bound_x18: int) -> dict[str, Any]:
        raise NotImplementedError

    def position_x18(self, d: Devnet, trader: str, market: str) -> int:
        raise NotImplementedError

    def fill(self, receipt: dict[str, Any]) -> tuple[int, int, int, int]:
        """(base delta, exchanged notional, fee, price after) as the venue's event reports them."""
        raise NotImplementedError

    def event_emitter(self, d: Devnet) -> str:
        """The venue's contract that logs its trades (what `receipt_facts` is given)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def state(self, d: Devnet, market: str) -> tuple[int, PerpMarketState]:
        snapshot = keeper_snapshot(d.rpc, d.manifest)
        state = self.adapter.state(snapshot.markets[market])
        assert not isinstance(state, Unavailable), state
        return snapshot.block_number, state

    @staticmethod
    def expected_fill(q: PerpQuote) -> tuple[int, int, int, int]:
        return (q.base_delta_raw, q.exchanged_notional_raw, q.fee_quote_raw, q.sqrt_price_after_x96)

    @staticmethod
    def size_x18(state: PerpMarketState, notional_usd: int) -> int:
        return notional_usd * 10**36 // state.index_price_x18

    # ------------------------------------------------------------------ the suite
    def test_declares_a_perp_venue(self) -> None:
        a = self.adapter
        assert a.name in PERP_VENUES and PERP_ADAPTERS[a.name] is a
        caps = a.capabilities
        assert caps.kind == "perp" and caps.reads and caps.exact_quotes and caps.same_transaction and caps.executor_leg

    def test_plans_its_own_reads_and_fills_its_snapshot_field(self, devnet: Devnet) -> None:
        system = {devnet.contract(n) for n in ("ClearingHouse", "ClearingHouseConfig", "Exchange", "AccountBalance",
                                               "MarketRegistry", "Vault")}
        assert_plans_its_own_reads(devnet, self.adapter, lambda market, static: system | {
            devnet.manifest.market(market).base_token, static.perp_pool.address})

    @pytest.mark.parametrize("market", MARKETS)
    def test_reads_equal_independent_contract_reads(self, devnet: Devnet, market: str) -> None:
        block, state = self.state(devnet, market)
        assert self.adapter_state(state) == self.independent_state(devnet, market, block)

    @pytest.mark.parametrize("market", MARKETS)
    @pytest.mark.parametrize("is_short", [True, False], ids=["short", "long"])
    @pytest.mark.parametrize("notional_usd", NOTIONALS_USD)
    def test_open_and_close_quotes_equal_actual_trades_to_the_wei(self, devnet: Devnet, market: str, is_short: bool,
                                                                 notional_usd: int) -> None:
        trader = devnet.manifest.accounts.traders[0]
        assert self.position_x18(devnet, trader, market) == 0
        # Given the market as the keeper reads it, an open's exact quote
        _, state = self.state(devnet, market)
        amount = self.size_x18(state, notional_usd)
        q = self.adapter.quote_open(state, is_short, amount, snapshot_price_band(state))
        assert abs(q.base_delta_raw) == amount and (q.base_delta_raw < 0) == is_short
        # When the trader opens it with the bound at the quote, the event reports exactly the quote
        receipt = self.open(devnet, trader, market, is_short, amount, abs(q.quote_delta_raw))
        assert self.fill(receipt) == self.expected_fill(q)
        # and the adapter's receipt facts carry the event's fee, for the trader and no one else
        emitter = self.event_emitter(devnet)
        assert self.adapter.receipt_facts(receipt, emitter, trader).fee_x18 == self.fill(receipt)[2] > 0
        other = devnet.manifest.accounts.traders[1]
        assert self.adapter.receipt_facts(receipt, emitter, other).fee_x18 == 0
        assert self.position_x18(devnet, trader, market) == q.base_delta_raw
        # And the close of that position, quoted on the next snapshot, fills exactly as quoted
        _, state = self.state(devnet, market)
        c = self.adapter.quote_close(state, q.base_delta_raw, snapshot_price_band(state))
        assert not c.is_partial_close and c.base_delta_raw == -q.base_delta_raw
        receipt = self.close(devnet, trader, market, abs(c.quote_delta_raw))
        assert self.fill(receipt) == self.expected_fill(c)
        assert self.adapter.receipt_facts(receipt, self.event_emitter(devnet), trader).fee_x18 == self.fill(receipt)[2]
        assert self.position_x18(devnet, trader, market) == 0

    @pytest.mark.parametrize("market", MARKETS)
    @pytest.mark.parametrize("is_short", [True, False], ids=["short", "long"])
    def test_a_bound_one_wei_tighter_than_the_quote_reverts(self, devnet: Devnet, market: str, is_short: bool) -> None:
        trader = devnet.manifest.accounts.traders[0]
        _, state = self.state(devnet, market)
        amount = self.size_x18(state, NOTIONALS_USD[1])
        q = self.adapter.quote_open(state, is_short, amount, snapshot_price_band(state))
        quote_abs = abs(q.quote_delta_raw)
        # a short's bound is the least quote it takes: one wei more; a long's the most it pays: one wei less
        with pytest.raises(TxRevertedError):
            self.open(devnet, trader, market, is_short, amount, quote_abs + 1 if is_short else quote_abs - 1)
        assert self.position_x18(devnet, trader, market) == 0
