"""Venue adapters: what the core asks a venue, instead of checking which venue it is.

A trade is a set of legs; each leg is on a venue adapter. An adapter declares its capabilities
(`VenueCapabilities`: the contract reads behind its state, whether its quotes are exact, whether
it settles inside the executor's one transaction, and the executor leg it needs) and answers for
its kind of venue:

- spot (`SpotVenueAdapter`): its state in a snapshot, its mid price, the exact swap of the spot
  token against USDC (a buy is exact output, a sell exact input: the spot side is exact), its pool
  fee, and the executor's code for it;
- perp (`PerpVenueAdapter`): its market state in a snapshot, the exact open and close.

Both decode their own events in a trade's receipt (`receipt_facts`): what the venue itself says the
trader paid or settled beyond the executor's Fills event (Perp: its fee and the funding settled).

The adapters are listed in keeper/venues/registry.py; each passes its kind's conformance suite
(tests/conformance/). Adding a venue: one adapter module, one registry line, its conformance
subclass and, if it trades, one executor leg.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from keeper.errors import SkipOpportunity
from keeper.frozen import quick_init
from keeper.types import MarketView, PerpMarketState, Unavailable, VenueKind
from keeper.venues.perp_v2_math import PerpPriceBand, PerpQuote


class QuoteUnavailable(SkipOpportunity):
    """The market or venue cannot be quoted this block (a read failed, or no such venue)."""


@dataclass(frozen=True)
class VenueCapabilities:
    kind: VenueKind
    reads: tuple[str, ...]  # the contract reads behind its state (Contract.function)
    exact_quotes: bool  # its quotes equal the chain's fills to the wei
    same_transaction: bool  # settles inside the executor's one transaction (no leg left open)
    executor_leg: str  # the executor's order for a leg on it (IBasisExecutor struct and venue code)


@dataclass(frozen=True)
class ReceiptFacts:
    """What a venue's own events in a receipt say about one trader's trade, exact: the fee it
    charged and the funding it settled (x18 quote; positive = the trader paid). Zero when the venue
    emits nothing beyond the executor's Fills event."""

    fee_x18: int = 0
    settled_funding_x18: int = 0


NO_RECEIPT_FACTS = ReceiptFacts()


@quick_init
@dataclass(frozen=True)
class SpotSwap:
    """One exact spot swap against USDC: `amount_raw` spot bought (exact out) or sold (exact in)."""

    is_buy: bool
    amount_raw: int  # the spot token, exact
    usdc_raw: int  # USDC paid (buy) or received (sell), > 0
    fee_raw: int  # the pool's fee, in the input token (USDC on a buy, spot on a sell)
    mid_price_usd: float  # the venue's pre-trade mid, USD per spot token


class SpotVenueAdapter(ABC):
    name: ClassVar[str]
    capabilities: ClassVar[VenueCapabilities]
    executor_code: ClassVar[int]  # IBasisExecutor.SpotVenue

    @abstractmethod
    def state(self, view: MarketView) -> Any:
        """The venue's state in the snapshot (its pool or pair), or Unavailable with the reason."""

    @abstractmethod
    def mid_price_usd(self, view: MarketView) -> float | Unavailable:
        """USD per spot token at the venue's mid."""

    @abstractmethod
    def quote_swap(self, view: MarketView, is_buy: bool, amount_raw: int) -> SpotSwap:
        """The exact swap on the snapshot's state; QuoteUnavailable (or the math's
        SkipOpportunity errors) when it cannot fill exactly `amount_raw`."""

    @abstractmethod
    def fee_pips(self, view: MarketView) -> int | None:
        """The pool fee (1e-6), None when the venue is not readable in this snapshot."""

    @abstractmethod
    def usdc_to_raise_price(self, view: MarketView, impact: float) -> float | None:
        """USD a buyer of spot pays to raise the venue's price by `impact` (0.01 = 1%); None when
        the venue is not readable or the move leaves the state the snapshot read (display only)."""

    def receipt_facts(self, receipt: dict[str, Any], emitter: str, trader: str) -> ReceiptFacts:
        """A spot swap's fill is the executor's Fills event and its fee the quote's: nothing more
        to decode by default."""
        return NO_RECEIPT_FACTS


class PerpVenueAdapter(ABC):
    name: ClassVar[str]
    capabilities: ClassVar[VenueCapabilities]

    @abstractmethod
    def state(self, view: MarketView) -> PerpMarketState | Unavailable:
        """The market's state in the snapshot, or Unavailable with the reason."""

    @abstractmethod
    def quote_open(self, state: PerpMarketState, is_short: bool, amount_x18: int, band: PerpPriceBand) -> PerpQuote:
        """Open (or add to) a taker position: short = sell exactly `amount_x18` base (exact input),
        long = buy exactly `amount_x18` base (exact output)."""

    @abstractmethod
    def quote_close(self, state: PerpMarketState, position_base_x18: int, band: PerpPriceBand) -> PerpQuote:
        """Close the whole signed position (the venue may fill it partly: `is_partial_close`)."""

    @abstractmethod
    def receipt_facts(self, receipt: dict[str, Any], emitter: str, trader: str) -> ReceiptFacts:
        """`trader`'s facts from the events `emitter` (the venue's contract that logs trades) left in
        `receipt`, summed over all its markets in that transaction."""


def require_state(view: MarketView, venue: str, state: Any) -> Any:
    if isinstance(state, Unavailable):
        raise QuoteUnavailable(f"{view.name}: {venue} unavailable: {state.reason}")
    return state
