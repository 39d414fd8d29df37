"""A trade's legs with their fills: each leg's venue, market, side and size, and the quote it paid
or received. What the engine logs (tx.planned, tx.outcome) and the simulation report lists.

A basis trade's fills (keeper.types.PredictedFills: the executor's Fills event) are per leg: the
perp leg's base and quote change, the spot leg's token and USDC change. Amounts stay exact ints
(`*_raw`, strings in JSON); the floats beside them are for reading only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keeper.types import USDC_DECIMALS, Intent, MarketSnapshot, PredictedFills, TradeLeg

PERP_DECIMALS = 18  # Perp v2's base and quote are 18-decimal


@dataclass(frozen=True)
class LegFill:
    leg: TradeLeg
    size_raw: int  # signed change of the leg's asset: + bought, - sold (perp base x18; spot token raw)
    size_decimals: int
    quote_raw: int  # signed quote change on the leg: - paid, + received (perp quote x18 after fee; USDC raw)
    quote_decimals: int

    @property
    def side(self) -> str:
        return "buy" if self.size_raw > 0 else "sell" if self.size_raw < 0 else "none"

    def as_json(self) -> dict[str, Any]:
        return {"venue_kind": self.leg.venue_kind, "venue": self.leg.venue, "market": self.leg.market,
                "side": self.side, "size": self.size_raw / 10**self.size_decimals, "size_raw": str(self.size_raw),
                "quote_usd": self.quote_raw / 10**self.quote_decimals, "quote_raw": str(self.quote_raw)}


def basis_leg_fills(legs: tuple[TradeLeg, ...], fills: PredictedFills, spot_decimals: int) -> tuple[LegFill, ...]:
    """A basis trade's fills by leg, in the legs' order (perp, then spot)."""
    kinds = sorted(leg.venue_kind for leg in legs)
    if kinds != ["perp", "spot"]:
        raise ValueError(f"a basis trade is one perp leg and one spot leg, not {[leg.venue_kind for leg in legs]}")
    return tuple(LegFill(leg, fills.perp_base_x18, PERP_DECIMALS, fills.perp_quote_x18, PERP_DECIMALS)
                 if leg.venue_kind == "perp" else
                 LegFill(leg, fills.spot_raw, spot_decimals, fills.usdc_raw, USDC_DECIMALS) for leg in legs)


def legs_json(legs: tuple[TradeLeg, ...], fills: PredictedFills | None, spot_decimals: int) -> list[dict[str, Any]]:
    """The legs as logged: with their fills when known, else venue and market only."""
    if fills is None:
        return [{"venue_kind": leg.venue_kind, "venue": leg.venue, "market": leg.market} for leg in legs]
    return [f.as_json() for f in basis_leg_fills(legs, fills, spot_decimals)]


def logged_legs(intent: Intent, fills: PredictedFills | None, snapshot: MarketSnapshot) -> list[dict[str, Any]]:
    """An intent's legs for a log event, with `fills` (predicted or actual) scaled by the market's
    spot decimals from the snapshot (without fills when the snapshot lacks the market)."""
    view = snapshot.markets.get(intent.market)
    return legs_json(intent.legs, fills if view is not None else None, view.spot_token_decimals if view else 0)


def describe_legs(legs: list[dict[str, Any]]) -> str:
    """One line per trade for a report: "perp_v2 ETH sell 1.5 (+4,500.00 USD); uniswap_v3 ETH buy ..."."""
    parts = []
    for leg in legs:
        if "side" not in leg:
            parts.append(f"{leg['venue']} {leg['market']}")
            continue
        parts.append(f"{leg['venue']} {leg['market']} {leg['side']} {abs(leg['size']):.6g} ({leg['quote_usd']:+,.2f} USD)")
    return "; ".join(parts)
