"""Where every contract's ABI and bytecode comes from.

Protocol bytecode is read, unmodified, from the official npm packages in node_modules/ (pinned in
package.json); our own contracts from forge's out/. The runtime keeper only needs ABIs, which are
exported into abis/ by `python -m keeper.artifacts export` (never hand-edited).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from keeper.chain.abi import ContractAbi
from keeper.errors import ToolMissingError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = PROJECT_ROOT / "node_modules"
FORGE_OUT = PROJECT_ROOT / "out"
ABI_DIR = PROJECT_ROOT / "abis"

_PERP = "@perp/curie-contract/artifacts/contracts"
_ORACLE = "@perp/perp-oracle-contract/artifacts/contracts"
_V3_CORE = "@uniswap/v3-core/artifacts/contracts"
_V3_PERIPHERY = "@uniswap/v3-periphery/artifacts/contracts"

# name -> (source, path). Sources: "npm" (hardhat/waffle JSON), "truffle-js" (a JS module that
# embeds the JSON), "forge" (our contracts, built by forge into out/).
ARTIFACT_SOURCES: dict[str, tuple[str, str]] = {
    # Perpetual Protocol v2 (Curie), @perp/curie-contract@2.8.4
    "ClearingHouse": ("npm", f"{_PERP}/ClearingHouse.sol/ClearingHouse.json"),
    "ClearingHouseConfig": ("npm", f"{_PERP}/ClearingHouseConfig.sol/ClearingHouseConfig.json"),
    "MarketRegistry": ("npm", f"{_PERP}/MarketRegistry.sol/MarketRegistry.json"),
    "OrderBook": ("npm", f"{_PERP}/OrderBook.sol/OrderBook.json"),
    "AccountBalance": ("npm", f"{_PERP}/AccountBalance.sol/AccountBalance.json"),
    "Exchange": ("npm", f"{_PERP}/Exchange.sol/Exchange.json"),
    "InsuranceFund": ("npm", f"{_PERP}/InsuranceFund.sol/InsuranceFund.json"),
    "Vault": ("npm", f"{_PERP}/Vault.sol/Vault.json"),
    "BaseToken": ("npm", f"{_PERP}/BaseToken.sol/BaseToken.json"),
    "QuoteToken": ("npm", f"{_PERP}/QuoteToken.sol/QuoteToken.json"),
    # Perp oracle, @perp/perp-oracle-contract@0.6.7
    "ChainlinkPriceFeedV3": ("npm", f"{_ORACLE}/ChainlinkPriceFeedV3.sol/ChainlinkPriceFeedV3.json"),
    "PriceFeedDispatcher": ("npm", f"{_ORACLE}/PriceFeedDispatcher.sol/PriceFeedDispatcher.json"),
    # Chainlink-style aggregator, @chainlink/contracts@0.1.7 (the only release shipping its bytecode)
    "MockV3Aggregator": ("truffle-js", "@chainlink/contracts/truffle/v0.7/MockV3Aggregator.js"),
    # Uniswap V2, @uniswap/v2-core@1.0.1 and @uniswap/v2-periphery@1.1.0-beta.0
    "WETH9": ("npm", "@uniswap/v2-periphery/build/WETH9.json"),
    "UniswapV2Factory": ("npm", "@uniswap/v2-core/build/UniswapV2Factory.json"),
    "UniswapV2Pair": ("npm", "@uniswap/v2-core/build/UniswapV2Pair.json"),
    "UniswapV2Router02": ("npm", "@uniswap/v2-periphery/build/UniswapV2Router02.json"),
    # Uniswap V3, @uniswap/v3-core@1.0.1 and @uniswap/v3-periphery@1.4.4
    "UniswapV3Factory": ("npm", f"{_V3_CORE}/UniswapV3Factory.sol/UniswapV3Factory.json"),
    "UniswapV3Pool": ("npm", f"{_V3_CORE}/UniswapV3Pool.sol/UniswapV3Pool.json"),
    "SwapRouter": ("npm", f"{_V3_PERIPHERY}/SwapRouter.sol/SwapRouter.json"),
    "QuoterV2": ("npm", f"{_V3_PERIPHERY}/lens/QuoterV2.sol/QuoterV2.json"),
    "NonfungiblePositionManager": (
        "npm",
        f"{_V3_PERIPHERY}/NonfungiblePositionManager.sol/NonfungiblePositionManager.json",
    ),
    # Ours (contracts/src), built by forge
    "MintableERC20": ("forge", "MintableERC20.sol/MintableERC20.json"),
    "Multicall3": ("forge", "Multicall3.sol/Multicall3.json"),
    "BasisExecutor": ("forge", "BasisExecutor.sol/BasisExecutor.json"),
}


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes  # creation code
    deployed_bytecode: bytes  # runtime code

    @property
    def codec(self) -> ContractAbi:
        return abi_codec(self.name)


def _hex_bytes(value: Any) -> bytes:
    if isinstance(value, dict):  # forge / solc: {"object": "0x..."}
        value = value.get("object", "")
    text = (value or "").removeprefix("0x")
    return bytes.fromhex(text)


def _read_json(source: str, rel_path: str) -> dict[str, Any]:
    base = FORGE_OUT if source == "forge" else NODE_MODULES
    path = base / rel_path
    if not path.exists():
        hint = "run `make deps` (forge build)" if source == "forge" else "run `make deps` (npm ci)"
        raise ToolMissingError(f"artifact {rel_path} not found under {base}: {hint}")
    text = path.read_text()
    if source == "truffle-js":
        # The JS module is `contract({...})`: the JSON object literal sits between the parentheses.
        match = re.search(r"contract\((\{.*\})\)", text, re.S)
        if not match:
            raise ToolMissingError(f"{path}: no embedded contract JSON found")
        text = match.group(1)
    return json.loads(text)


@cache
def load_artifact(name: str) -> Artifact:
    """ABI + creation and runtime bytecode of a named contract (for deploying)."""
    if name not in ARTIFACT_SOURCES:
        raise KeyError(f"unknown artifact {name!r}")
    source, rel_path = ARTIFACT_SOURCES[name]
    data = _read_json(source, rel_path)
    evm = data.get("evm", {})
    bytecode = _hex_bytes(data.get("bytecode") or evm.get("bytecode"))
    deployed = _hex_bytes(data.get("deployedBytecode") or evm.get("deployedBytecode"))
    if not bytecode:
        raise ToolMissingError(f"artifact {name} ({rel_path}) carries no bytecode")
    return Artifact(name=name, abi=data["abi"], bytecode=bytecode, deployed_bytecode=deployed)


@cache
def abi_codec(name: str) -> ContractAbi:
    """The ABI codec of a named contract: from abis/ (committed), falling back to the artifact."""
    path = ABI_DIR / f"{name}.json"
    if path.exists():
        return ContractAbi(json.loads(path.read_text()), name)
    return ContractAbi(load_artifact(name).abi, name)


def export_abis(target: Path = ABI_DIR) -> list[Path]:
    """Write abis/<Name>.json for every known artifact (sorted keys, stable diff)."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(ARTIFACT_SOURCES):
        path = target / f"{name}.json"
        path.write_text(json.dumps(load_artifact(name).abi, indent=1, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    if sys.argv[1:] != ["export"]:
        print("usage: python -m keeper.artifacts export", file=sys.stderr)
        raise SystemExit(2)
    for p in export_abis():
        print(p.relative_to(PROJECT_ROOT))
