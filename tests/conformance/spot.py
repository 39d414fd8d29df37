"""The conformance suite every spot venue adapter passes (subclass it: see test_uniswap_v3.py).

- it declares itself a spot venue, registered under its name, with the executor's code for it;
- its state in a keeper snapshot equals independent contract reads (eth_call + eth-abi) at that block;
- its exact swap quote equals an actual swap on anvil, to the wei, both ways, small and large;
- bounds hold: the swap with its limit at the quote goes through; one wei tighter reverts;
- an unreadable venue is Unavailable: no mid price, no fee, and a quote raises QuoteUnavailable.

A subclass names its adapter and supplies the venue-specific parts: the independent reads, the
fields of the adapter's state to compare, and a swap through the venue's own router."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest

from keeper.errors import TxRevertedError
from keeper.types import SPOT_VENUES, MarketView, Unavailable
from keeper.venues.adapter import QuoteUnavailable, SpotVenueAdapter
from keeper.venues.registry import SPOT_ADAPTERS

from .chain import keeper_snapshot, read
from .reads import assert_plans_its_own_reads
from .conftest import Devnet

ROOT = Path(__file__).resolve().parents[2]
MARKETS = ("ETH", "BTC")
SIZES_PPM = (10, 20_000)  # of the venue's spot-token balance: a small swap and a large one (2%)


class SpotVenueConformance:
    adapter: ClassVar[SpotVenueAdapter]
    executor_enum_member: ClassVar[str]  # its member of IBasisExecutor.SpotVenue

    # ------------------------------------------------------------------ the venue's own parts
    def venue_address(self, d: Devnet, market: str) -> str:
        raise NotImplementedError

    def independent_state(self, d: Devnet, market: str, block: int) -> dict[str, Any]:
        """The venue's state read directly from its contracts at `block`."""
        raise NotImplementedError

    def adapter_state(self, state: Any) -> dict[str, Any]:
        """The same fields from the adapter's state."""
        raise NotImplementedError

    def swap(self, d: Devnet, trader: str, market: str, is_buy: bool, amount_raw: int, limit_raw: int) -> None:
        """A swap through the venue's router: buy exactly `amount_raw` spot paying at most `limit_raw`
        USDC, or sell exactly `amount_raw` spot for at least `limit_raw` USDC."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def view(self, d: Devnet, market: str) -> tuple[int, MarketView]:
        snapshot = keeper_snapshot(d.rpc, d.manifest)
        return snapshot.block_number, snapshot.markets[market]

    @staticmethod
    def balance(d: Devnet, token: str, account: str) -> int:
        return read(d.rpc, token, "balanceOf(address)", ["uint256"], account)[0]

    def amount(self, d: Devnet, market: str, size_ppm: int) -> int:
        held = self.balance(d, d.manifest.market(market).spot_token, self.venue_address(d, market))
        return max(1, held * size_ppm // 1_000_000)

    # ------------------------------------------------------------------ the suite
    def test_declares_a_spot_venue_the_executor_can_trade(self) -> None:
        a = self.adapter
        assert a.name in SPOT_VENUES and SPOT_ADAPTERS[a.name] is a
        caps = a.capabilities
        assert caps.kind == "spot" and caps.reads and caps.exact_quotes and caps.same_transaction
        # the adapter's executor code is its member's position in the contract's SpotVenue enum
        source = (ROOT / "contracts/src/interfaces/IBasisExecutor.sol").read_text()
        members = re.search(r"enum SpotVenue \{([^}]*)\}", source)
        assert members is not None
        assert [m.strip() for m in members.group(1).split(",")].index(self.executor_enum_member) == a.executor_code
        assert self.executor_enum_member in caps.executor_leg

    def test_plans_its_own_reads_and_fills_its_snapshot_field(self, devnet: Devnet) -> None:
        assert_plans_its_own_reads(devnet, self.adapter, lambda market, static: {self.venue_address(devnet, market)})

    @pytest.mark.parametrize("market", MARKETS)
    def test_reads_equal_independent_contract_reads(self, devnet: Devnet, market: str) -> None:
        block, view = self.view(devnet, market)
        state = self.adapter.state(view)
        assert not isinstance(state, Unavailable), state
        assert self.adapter_state(state) == self.independent_state(devnet, market, block)

    @pytest.mark.parametrize("market", MARKETS)
    @pytest.mark.parametrize("is_buy", [True, False], ids=["buy", "sell"])
    @pytest.mark.parametrize("size_ppm", SIZES_PPM)
    def test_quote_equals_an_actual_swap_to_the_wei(self, devnet: Devnet, market: str, is_buy: bool,
                                                    size_ppm: int) -> None:
        # Given the venue as the keeper reads it, and a swap's exact quote on it
        _, view = self.view(devnet, market)
        amount = self.amount(devnet, market, size_ppm)
        q = self.adapter.quote_swap(view, is_buy, amount)
        assert (q.is_buy, q.amount_raw) == (is_buy, amount) and q.usdc_raw > 0 and q.fee_raw > 0
        # When a trader swaps exactly that, with the limit at the quote (the tightest bound)
        m, trader = devnet.manifest.market(market), devnet.manifest.accounts.traders[0]
        usdc = devnet.contract("USDC")
        spot_before, usdc_before = self.balance(devnet, m.spot_token, trader), self.balance(devnet, usdc, trader)
        self.swap(devnet, trader, market, is_buy, amount, q.usdc_raw)
        # Then the trader's balances moved exactly as quoted
        spot_delta = self.balance(devnet, m.spot_token, trader) - spot_before
        usdc_delta = self.balance(devnet, usdc, trader) - usdc_before
        assert (spot_delta, usdc_delta) == ((amount, -q.usdc_raw) if is_buy else (-amount, q.usdc_raw))

    @pytest.mark.parametrize("market", MARKETS)
    @pytest.mark.parametrize("is_buy", [True, False], ids=["buy", "sell"])
    def test_a_limit_one_wei_tighter_than_the_quote_reverts(self, devnet: Devnet, market: str, is_buy: bool) -> None:
        _, view = self.view(devnet, market)
        amount = self.amount(devnet, market, SIZES_PPM[1])
        q = self.adapter.quote_swap(view, is_buy, amount)
        trader = devnet.manifest.accounts.traders[0]
        # a buy pays at most the limit: one wei under the quote; a sell gets at least it: one over
        with pytest.raises(TxRevertedError):
            self.swap(devnet, trader, market, is_buy, amount, q.usdc_raw - 1 if is_buy else q.usdc_raw + 1)

    @pytest.mark.parametrize("market", MARKETS[:1])
    def test_an_unreadable_venue_is_unavailable(self, devnet: Devnet, market: str) -> None:
        _, view = self.view(devnet, market)
        gone = Unavailable("read failed")
        field = next(f.name for f in dataclasses.fields(view) if getattr(view, f.name) is self.adapter.state(view))
        blind = dataclasses.replace(view, **{field: gone})
        assert self.adapter.state(blind) is gone and self.adapter.mid_price_usd(blind) is gone
        assert self.adapter.fee_pips(blind) is None
        with pytest.raises(QuoteUnavailable, match=self.adapter.name):
            self.adapter.quote_swap(blind, True, 1)

    @pytest.mark.parametrize("market", MARKETS)
    def test_mid_price_and_fee_come_from_the_state(self, devnet: Devnet, market: str) -> None:
        _, view = self.view(devnet, market)
        mid = self.adapter.mid_price_usd(view)
        assert isinstance(mid, float) and mid > 0
        q = self.adapter.quote_swap(view, True, self.amount(devnet, market, SIZES_PPM[0]))
        assert q.mid_price_usd == mid
        fee = self.adapter.fee_pips(view)
        assert fee is not None and 0 < fee < 1_000_000
