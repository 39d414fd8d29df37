"""The journal's record types: what its readers get back, its errors and constants."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum
from typing import Any, Literal

from keeper.errors import ConfigError, FatalError
from keeper.frozen import quick_init
from keeper.pnl_split import PnlSplit, TradeFees, sum_pnl
from keeper.types import Direction, PnlEstimate, Position, PredictedFills, VenueKind

DecisionStatus = Literal["planned", "skipped", "sent", "dry_run"]
TxRecordStatus = Literal["pending", "included", "reverted", "dropped", "replaced", "dry_run", "simulation_reverted"]
DifferenceKind = Literal["journal_only", "chain_only", "size_mismatch"]
DifferenceField = Literal["perp_base_x18", "spot_raw"]
DifferenceAction = Literal["closed", "adopted", "corrected"]

_SETTLED_STATUSES = ("included", "reverted", "dropped", "replaced")
_UNSENT_STATUSES = ("dry_run", "simulation_reverted")
_FILL_EVENT_OF_KIND = {"open": "BasisOpened", "resize": "BasisResized", "close": "BasisClosed"}
CLOSED_NOT_ON_CHAIN = "reconciled: not on chain"
# A position whose chain is gone (an embedded devnet's, after its run): closed in the journal with
# this reason and no realized PnL; its cash so far is shown apart (StatusReport.written_off).
WRITTEN_OFF = "written off: the chain that held it is gone"


class JournalError(FatalError):
    """The journal cannot record this consistently (unknown id, a settled tx settled again ...)."""


class JournalSchemaError(ConfigError):
    """The file is not a journal this keeper can use (another schema version, not SQLite ...)."""

HANDOVER_PREFIX = "hand-over:"


# ------------------------------------------------------------------------------ records
@quick_init  # built per block (keeper/frozen.py)
@dataclass(frozen=True)
class ChainPosition:
    """What the chain holds in one market.

    perp_base_x18: AccountBalance.getTakerPositionSize(executor, baseToken), signed; 0 = flat.
    spot_raw: spot held against the position, signed, token decimals: the executor's spot-token
              balance minus the inventory it holds when flat (the caller knows that baseline).
              None: not read, not compared."""

    perp_base_x18: int
    spot_raw: int | None = None


@dataclass(frozen=True)
class PositionsHolder:
    """Where the journal's open positions are held: the executor and chain of its last live run,
    and whether that chain was an embedded devnet's (a new chain each run: gone when the run ended)."""

    chain_id: int
    executor: str
    embedded: bool


def held_in(executor: str | None, chain_id: int | None) -> str:
    """"executor X on chain Y", where open positions are held (None: "unrecorded")."""
    return f"executor {executor or 'unrecorded'} on chain {chain_id if chain_id is not None else 'unrecorded'}"


@dataclass(frozen=True)
class ReconcileDifference:
    """One field on which the journal and the chain disagreed, and what the journal did about it.
    `source` is "reconcile", or "tx <id>" when met while applying a trade."""

    market: str
    kind: DifferenceKind
    field: DifferenceField
    journal_value: int | None  # None: the journal had no position
    chain_value: int | None  # None: the chain's value was not read
    action: DifferenceAction
    position_id: int
    block: int
    source: str


@dataclass(frozen=True)
class DecisionRecord:
    id: int
    block: int
    timestamp_s: int | None
    strategy: str
    market: str
    kind: str | None  # None: a strategy's "no trade" decision (status skipped)
    direction: Direction | None
    spot_venue: str | None
    perp_base_x18: int | None
    reason: str
    basis_bps: float | None
    expected: PnlEstimate | None
    inputs: Mapping[str, Any]
    created_block: int | None
    valid_until_block: int | None
    status: DecisionStatus
    status_reason: str | None
    position_id: int | None


@dataclass(frozen=True)
class PlanBounds:
    """The bounds a plan sent to the executor, and its gas budget."""

    perp_opposite_amount_bound_x18: int
    spot_limit_raw: int
    max_residual_base_x18: int
    min_net_quote_x18: int
    deadline_s: int
    gas_limit: int
    gas_cost_wei: int


@dataclass(frozen=True)
class TxRecord:
    id: int
    decision_id: int
    market: str
    kind: str
    position_id: int | None  # the position whose gas this is; None: none (a failed open ...)
    status: TxRecordStatus
    tx_hash: str | None
    attempt_hashes: tuple[str, ...]
    nonce: int | None
    sent_block: int | None
    block_number: int | None
    block_timestamp_s: int | None
    to: str
    calldata: bytes
    value_wei: int
    bounds: PlanBounds
    predicted: PredictedFills
    gas_used: int
    fee_paid_wei: int
    eth_price_x18: int | None
    gas_usd_x18: int
    revert_reason: str | None
    detail: str | None


@dataclass(frozen=True)
class FillsRecord:
    """The executor's Fills of one included trade, what the venues charged, and the funding Perp
    settled in the same transaction."""

    tx_id: int
    market: str
    position_id: int | None
    event: str
    spot_venue: str
    block_number: int
    fills: PredictedFills
    position_base_after_x18: int | None
    fees: TradeFees
    settled_funding_x18: int


@dataclass(frozen=True)
class FundingRecord:
    id: int
    market: str
    block: int
    timestamp_s: int | None
    kind: Literal["pending", "settled"]
    amount_x18: int  # positive: the account owes (pending) / paid (settled) funding
    position_id: int | None
    tx_id: int | None


@dataclass(frozen=True)
class PositionLeg:
    """One leg of a position: its index (0 the perp leg, 1 the spot leg of a basis trade), the kind
    of venue and the venue."""

    leg: int
    venue_kind: VenueKind
    venue: str


@dataclass(frozen=True)
class PositionRecord:
    """A position as the journal holds it. For an adopted position (entry_known False) the entry
    fields of `position` are when the journal adopted it, and entry_basis_bps is NaN.
    `pnl`: realized for a closed position; to date (settled + pending funding, trades so far, gas
    so far; not marked to market) for an open one, and for a written-off one (close_reason
    WRITTEN_OFF: never realized) as of its write-off."""

    id: int
    status: Literal["open", "closed"]
    position: Position
    entry_known: bool
    fees_x18: int
    funding_settled_x18: int
    funding_pending_x18: int
    last_block: int
    closed_block: int | None
    closed_timestamp_s: int | None
    close_reason: str | None
    pnl: PnlSplit
    legs: tuple[PositionLeg, ...] = ()


@dataclass(frozen=True)
class PositionEvent:
    id: int
    position_id: int
    kind: Literal["open", "update", "close", "reconcile"]
    block: int
    timestamp_s: int | None
    tx_id: int | None
    direction: Direction
    perp_base_x18: int
    spot_raw: int
    net_quote_x18: int
    detail: str


@dataclass(frozen=True)
class RealizedPnl:
    position_id: int
    market: str
    closed_block: int
    split: PnlSplit
    complete: bool  # False: entry adopted from the chain, or closed by reconcile (flows partly unknown)


@dataclass(frozen=True)
class MarketPnl:
    """One market: closed positions, the open one (to date), and gas tied to no position (failed
    opens, transactions of positions closed meanwhile)."""

    market: str
    realized: PnlSplit
    open: PnlSplit
    unattributed: PnlSplit
    closed_positions: int

    @property
    def total(self) -> PnlSplit:
        return self.realized + self.open + self.unattributed


@dataclass(frozen=True)
class PnlSummary:
    markets: Mapping[str, MarketPnl]

    @property
    def realized(self) -> PnlSplit:
        return sum_pnl(m.realized for m in self.markets.values())

    @property
    def open(self) -> PnlSplit:
        return sum_pnl(m.open for m in self.markets.values())

    @property
    def unattributed(self) -> PnlSplit:
        return sum_pnl(m.unattributed for m in self.markets.values())

    @property
    def total(self) -> PnlSplit:
        return self.realized + self.open + self.unattributed


@dataclass(frozen=True)
class StatusReport:
    """What `keeper status` shows: open positions, PnL, transactions in flight, latest funding."""

    journal_path: str
    schema_version: int
    last_block: int | None
    positions: tuple[PositionRecord, ...]
    pnl: PnlSummary
    pending_transactions: tuple[TxRecord, ...]
    latest_funding: Mapping[str, FundingRecord]
    written_off: tuple[PositionRecord, ...] = ()  # closed as WRITTEN_OFF: pnl is their cash so far, in no total

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON types. Fields named *_x18, *_raw, *_wei are decimal strings (they exceed a
        JSON double); NaN becomes null; PnL splits carry their trading and total too."""
        pnl = self.pnl
        return {
            "journal_path": self.journal_path,
            "schema_version": self.schema_version,
            "last_block": self.last_block,
            "positions": [_to_json(p) for p in self.positions],
            "pnl": {
                "markets": {m: _to_json(v) | {"total": v.total.to_json_dict()} for m, v in pnl.markets.items()},
                "realized": pnl.realized.to_json_dict(),
                "open": pnl.open.to_json_dict(),
                "unattributed": pnl.unattributed.to_json_dict(),
                "total": pnl.total.to_json_dict(),
            },
            "pending_transactions": [_to_json(t) for t in self.pending_transactions],
            "latest_funding": {m: _to_json(f) for m, f in self.latest_funding.items()},
            "written_off": [_to_json(p) for p in self.written_off],
        }


def _to_json(value: Any, name: str = "") -> Any:
    if isinstance(value, PnlSplit):
        return value.to_json_dict()
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name), f.name) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value) if name.endswith(("_x18", "_raw", "_wei")) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


