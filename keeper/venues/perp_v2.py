"""Perpetual Protocol v2 (Curie) reads: prices, funding inputs, fees, and an account's position.

Mark price is read from AccountBalance.getMarkPrice (the price margin uses: the median of the 15 s
market TWAP, the 30 min market TWAP and index + premium). Funding uses the market TWAP and index
TWAP over ClearingHouseConfig.getTwapInterval (see PerpMarketState.funding_premium_x18). Exact
open/close quotes are in perp_v2_math.py.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils import keccak

from keeper.artifacts import abi_codec
from keeper.chain.multicall import Call, word_int, word_uint
from keeper.frozen import quick_init
from keeper.types import PerpAccountMarket, PerpAccountState, perp_price_from_sqrt_x96
from keeper.venues.reads import ReadPlan

_CH = abi_codec("ClearingHouse")
_CONFIG = abi_codec("ClearingHouseConfig")
_EXCHANGE = abi_codec("Exchange")
_ACCOUNT_BALANCE = abi_codec("AccountBalance")
_REGISTRY = abi_codec("MarketRegistry")
_VAULT = abi_codec("Vault")
_BASE = abi_codec("BaseToken")


@dataclass(frozen=True)
class PerpAddresses:
    """The Perp v2 system contracts (one set per chain)."""

    clearing_house: str
    clearing_house_config: str
    exchange: str
    account_balance: str
    market_registry: str
    vault: str


@dataclass(frozen=True)
class PerpConfig:
    max_funding_rate_ppm: int
    twap_interval_s: int


@quick_init  # built per block (keeper/frozen.py)
@dataclass(frozen=True)
class PerpMarketReads:
    """Perp market values read at one block (the vAMM pool is read by the V3 venue)."""

    mark_price_x18: int
    index_price_x18: int
    index_twap_x18: int
    market_twap_x18: int
    pool: str
    exchange_fee_ratio_ppm: int
    uniswap_fee_ratio_ppm: int
    insurance_fund_fee_ratio_ppm: int
    max_price_spread_ratio_ppm: int  # how far the vAMM may trade from the index (MarketInfo.maxPriceSpreadRatio)
    max_tick_crossed_within_block: int  # Exchange.getMaxTickCrossedWithinBlock


def plan_config(perp: PerpAddresses) -> ReadPlan[PerpConfig]:
    calls = [Call(perp.clearing_house_config, _CONFIG.encode("getMaxFundingRate"), "ClearingHouseConfig.getMaxFundingRate"),
             Call(perp.clearing_house_config, _CONFIG.encode("getTwapInterval"), "ClearingHouseConfig.getTwapInterval")]
    return ReadPlan(calls, lambda d: PerpConfig(word_uint(d[0]), word_uint(d[1])))


def plan_market(perp: PerpAddresses, base_token: str, twap_interval_s: int) -> ReadPlan[PerpMarketReads]:
    calls = [
        Call(perp.account_balance, _ACCOUNT_BALANCE.encode("getMarkPrice", base_token), f"AccountBalance.getMarkPrice({base_token})"),
        Call(base_token, _BASE.encode("getIndexPrice", 0), f"BaseToken({base_token}).getIndexPrice(0)"),
        Call(base_token, _BASE.encode("getIndexPrice", twap_interval_s), f"BaseToken({base_token}).getIndexPrice({twap_interval_s})"),
        Call(perp.exchange, _EXCHANGE.encode("getSqrtMarketTwapX96", base_token, twap_interval_s),
             f"Exchange.getSqrtMarketTwapX96({base_token}, {twap_interval_s})"),
        Call(perp.market_registry, _REGISTRY.encode("getMarketInfo", base_token), f"MarketRegistry.getMarketInfo({base_token})"),
        Call(perp.exchange, _EXCHANGE.encode("getMaxTickCrossedWithinBlock", base_token),
             f"Exchange.getMaxTickCrossedWithinBlock({base_token})"),
    ]

    def decode(d: Sequence[bytes]) -> PerpMarketReads:
        info = d[4]
        frm = int.from_bytes  # word_uint inlined: ten words, two markets a block in a backtest
        return PerpMarketReads(  # positional, in the field order
            frm(d[0][:32], "big"),  # mark_price_x18
            frm(d[1][:32], "big"),  # index_price_x18
            frm(d[2][:32], "big"),  # index_twap_x18
            perp_price_from_sqrt_x96(frm(d[3][:32], "big")),  # market_twap_x18
            "0x" + info[12:32].hex(),  # pool
            frm(info[32:64], "big"),  # exchange_fee_ratio_ppm
            frm(info[64:96], "big"),  # uniswap_fee_ratio_ppm
            frm(info[96:128], "big"),  # insurance_fund_fee_ratio_ppm
            frm(info[128:160], "big"),  # max_price_spread_ratio_ppm
            frm(d[5][:32], "big"),  # max_tick_crossed_within_block
        )

    return ReadPlan(calls, decode)


def plan_account(perp: PerpAddresses, account: str, base_tokens: Sequence[tuple[str, str]]) -> ReadPlan[PerpAccountState]:
    """An account's Perp state; base_tokens is [(market name, base token)]."""
    calls = [
        Call(perp.clearing_house, _CH.encode("getAccountValue", account), "ClearingHouse.getAccountValue"),
        Call(perp.vault, _VAULT.encode("getFreeCollateral", account), "Vault.getFreeCollateral"),
        Call(perp.account_balance, _ACCOUNT_BALANCE.encode("getTotalAbsPositionValue", account), "AccountBalance.getTotalAbsPositionValue"),
        Call(perp.account_balance, _ACCOUNT_BALANCE.encode("getMarginRequirementForLiquidation", account),
             "AccountBalance.getMarginRequirementForLiquidation"),
    ]
    for name, base in base_tokens:
        calls += [
            Call(perp.account_balance, _ACCOUNT_BALANCE.encode("getTakerPositionSize", account, base), f"getTakerPositionSize({name})"),
            Call(perp.account_balance, _ACCOUNT_BALANCE.encode("getTakerOpenNotional", account, base), f"getTakerOpenNotional({name})"),
            Call(perp.exchange, _EXCHANGE.encode("getPendingFundingPayment", account, base), f"getPendingFundingPayment({name})"),
        ]

    def decode(d: Sequence[bytes]) -> PerpAccountState:
        markets = {}
        for i, (name, _) in enumerate(base_tokens):
            j = 4 + 3 * i
            markets[name] = PerpAccountMarket(word_int(d[j]), word_int(d[j + 1]), word_int(d[j + 2]))
        return PerpAccountState(account, word_int(d[0]), word_uint(d[1]), word_uint(d[2]), word_int(d[3]), markets)

    return ReadPlan(calls, decode)


_POSITION_CHANGED = keccak(text="PositionChanged(address,address,int256,int256,uint256,int256,int256,uint256)")
_FUNDING_SETTLED = keccak(text="FundingPaymentSettled(address,address,int256)")


def perp_facts_from_receipt(receipt: dict, clearing_house: str, trader: str) -> tuple[int, int]:  # type: ignore[type-arg]
    """(fee x18, settled funding x18) of `trader`'s Perp events in a receipt."""
    fee = settled = 0
    trader_topic = "0x" + "00" * 12 + trader.lower()[2:]
    for log in receipt.get("logs", []):
        topics = log.get("topics") or []
        if log["address"].lower() != clearing_house.lower() or len(topics) < 2 or topics[1].lower() != trader_topic:
            continue
        topic0 = bytes.fromhex(topics[0][2:])
        data = bytes.fromhex(log["data"][2:])
        if topic0 == _POSITION_CHANGED:
            fee += word_uint(data, 2)
        elif topic0 == _FUNDING_SETTLED:
            settled += word_int(data, 0)
    return fee, settled


# Exchange's storage (Curie 2.8.4: ExchangeStorageV1 from slot 205 after the upgradeable bases,
# checked against the contract source and, in tests, against the devnet): mappings keyed by base token.
EXCHANGE_LAST_UPDATED_TICK_SLOT = 208  # mapping(address => int24) _lastUpdatedTickMap
EXCHANGE_MAX_TICK_CROSSED_SLOT = 212  # mapping(address => uint24) _maxTickCrossedWithinBlockMap (has a getter)
EXCHANGE_LAST_TICK_UPDATED_TIMESTAMP_SLOT = 214  # ExchangeStorageV2: mapping(address => uint256) _lastTickUpdatedTimestampMap


@functools.lru_cache(maxsize=256)  # a few markets x 2 slots, asked every block: keccak was 4% of a backtest
def mapping_slot(key_address: str, slot: int) -> str:
    """The storage slot of mapping[key] for a mapping at `slot` (keccak256(abi.encode(key, slot)))."""
    return "0x" + keccak(bytes(12) + bytes.fromhex(key_address[2:]) + slot.to_bytes(32, "big")).hex()


def band_storage_requests(exchange: str, base_token: str, block: int) -> list[tuple[str, list[object]]]:
    """eth_getStorageAt requests for a market's stored band tick and its timestamp, pinned to `block`."""
    tick_slot, timestamp_slot = _band_slots(base_token)
    at = hex(block)
    return [("eth_getStorageAt", [exchange, tick_slot, at]), ("eth_getStorageAt", [exchange, timestamp_slot, at])]


@functools.lru_cache(maxsize=256)  # asked for every market every block (one cache look-up, not two)
def _band_slots(base_token: str) -> tuple[str, str]:
    return (mapping_slot(base_token, EXCHANGE_LAST_UPDATED_TICK_SLOT),
            mapping_slot(base_token, EXCHANGE_LAST_TICK_UPDATED_TIMESTAMP_SLOT))


def decode_band_storage(tick_word: str, timestamp_word: str) -> tuple[int, int]:
    """(last updated tick, its timestamp) from the two storage words: the tick is an int24 in the
    low 3 bytes of its slot."""
    raw = int(tick_word, 16) & 0xFFFFFF
    tick = raw - (1 << 24) if raw & 0x800000 else raw
    return tick, int(timestamp_word, 16)
