"""The devnet manifest: where everything is. Written by `keeper devnet`, read by every command
that takes --manifest. Unknown keys are rejected so that a stale or hand-edited file fails loudly."""

from __future__ import annotations

import json
from pathlib import Path

from typing import Annotated

from eth_utils import is_address, to_checksum_address
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from keeper.errors import ConfigError

DEFAULT_MANIFEST = Path(".keeper/devnet/manifest.json")  # where `keeper devnet` writes it, and the commands look


def _checksummed(value: str) -> str:
    if not is_address(value):
        raise ValueError(f"not a 20-byte hex address: {value!r}")
    return to_checksum_address(value)


Address = Annotated[str, AfterValidator(_checksummed)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MarketAddresses(_Strict):
    """One market: a Perp v2 vBase/vUSD pool and the spot pools of the same asset against USDC."""

    name: str  # "ETH"
    base_token: Address  # Perp v2 BaseToken (vETH)
    perp_pool: Address  # Uniswap V3 pool vETH/vUSD behind Perp v2
    aggregator: Address  # Chainlink-style aggregator (answer has 8 decimals)
    chainlink_price_feed: Address  # perp-oracle ChainlinkPriceFeedV3
    price_feed_dispatcher: Address  # perp-oracle PriceFeedDispatcher (BaseToken's price feed)
    spot_token: Address  # WETH9 / WBTC-like / test token
    spot_token_decimals: int
    uniswap_v2_pair: Address
    uniswap_v3_pool: Address
    uniswap_v3_fee_pips: int


class Accounts(_Strict):
    deployer: Address
    keeper: Address
    maker: Address
    liquidity: Address
    traders: list[Address]


class DevnetManifest(_Strict):
    rpc_url: str
    chain_id: int
    deployed_block: int
    deployed_timestamp: int
    accounts: Accounts
    contracts: dict[str, Address]
    markets: list[MarketAddresses]

    def market(self, name: str) -> MarketAddresses:
        for market in self.markets:
            if market.name == name:
                return market
        raise KeyError(f"no market {name!r} in manifest (have {[m.name for m in self.markets]})")

    def all_addresses(self) -> dict[str, str]:
        """Every contract address by a unique name (markets' as '<market>.<field>')."""
        named = dict(self.contracts)
        for market in self.markets:
            for key, value in market.model_dump().items():
                if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
                    named[f"{market.name}.{key}"] = value
        return named

    def with_rpc_url(self, rpc_url: str) -> DevnetManifest:
        return self.model_copy(update={"rpc_url": rpc_url})

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.model_dump_json(indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> DevnetManifest:
        try:
            return cls.model_validate(json.loads(Path(path).read_text()))
        except FileNotFoundError as exc:
            raise ConfigError(f"manifest {path}: file not found (`keeper devnet` writes one; give --manifest or set "
                              "chain.manifest)") from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(f"manifest {path}: not JSON ({exc})") from exc
        except (OSError, UnicodeDecodeError) as exc:  # a directory, no permission, binary
            raise ConfigError(f"manifest {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"manifest {path}: field {where}: {first['msg']}") from exc
