"""ABI coding from JSON ABIs with eth-abi: calldata, return values, constructor args, reverts.

Structs are passed and returned as tuples, in ABI order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak

ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)


def abi_type(param: dict[str, Any]) -> str:
    """The canonical type string of one ABI parameter, tuples expanded."""
    kind = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple'):]}"
    return kind


@dataclass(frozen=True)
class AbiFunction:
    name: str
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]
    selector: bytes

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.input_types)})"

    def encode_call(self, *args: Any) -> bytes:
        if len(args) != len(self.input_types):
            raise TypeError(f"{self.signature} takes {len(self.input_types)} arguments, got {len(args)}")
        return self.selector + encode(list(self.input_types), list(args))

    def decode_output(self, data: bytes) -> tuple[Any, ...]:
        return tuple(decode(list(self.output_types), data))


@dataclass(frozen=True)
class AbiError:
    name: str
    input_types: tuple[str, ...]
    selector: bytes


class ContractAbi:
    """Lookup and coding for one contract's ABI. Overloads are picked by argument count."""

    def __init__(self, abi: list[dict[str, Any]], name: str = "contract") -> None:
        self.name = name
        self.abi = abi
        self._functions: dict[str, list[AbiFunction]] = {}
        self._errors: dict[bytes, AbiError] = {}
        self.constructor_types: tuple[str, ...] = ()
        for entry in abi:
            kind = entry.get("type", "function")
            if kind == "function":
                inputs = tuple(abi_type(p) for p in entry.get("inputs", []))
                outputs = tuple(abi_type(p) for p in entry.get("outputs", []))
                selector = keccak(text=f"{entry['name']}({','.join(inputs)})")[:4]
                self._functions.setdefault(entry["name"], []).append(
                    AbiFunction(entry["name"], inputs, outputs, selector)
                )
            elif kind == "constructor":
                self.constructor_types = tuple(abi_type(p) for p in entry.get("inputs", []))
            elif kind == "error":
                inputs = tuple(abi_type(p) for p in entry.get("inputs", []))
                selector = keccak(text=f"{entry['name']}({','.join(inputs)})")[:4]
                self._errors[selector] = AbiError(entry["name"], inputs, selector)

    def fn(self, name: str, arg_count: int | None = None) -> AbiFunction:
        candidates = self._functions.get(name)
        if not candidates:
            raise KeyError(f"{self.name} has no function {name!r}")
        if arg_count is not None:
            candidates = [f for f in candidates if len(f.input_types) == arg_count]
        if len(candidates) != 1:
            raise KeyError(f"{self.name}.{name}: {len(candidates)} overloads match; give arg_count")
        return candidates[0]

    def encode(self, name: str, *args: Any) -> bytes:
        return self.fn(name, len(args)).encode_call(*args)

    def decode(self, name: str, data: bytes, arg_count: int | None = None) -> tuple[Any, ...]:
        return self.fn(name, arg_count).decode_output(data)

    def encode_constructor(self, *args: Any) -> bytes:
        if len(args) != len(self.constructor_types):
            raise TypeError(f"{self.name} constructor takes {len(self.constructor_types)} arguments, got {len(args)}")
        return encode(list(self.constructor_types), list(args)) if args else b""

    def describe_revert(self, data: bytes) -> str:
        """Readable text for revert data: Error(string), Panic(code), or this ABI's custom errors."""
        return describe_revert(data, self._errors)


def describe_revert(data: bytes, custom_errors: dict[bytes, AbiError] | None = None) -> str:
    if not data:
        return "reverted without data"
    selector, body = data[:4], data[4:]
    try:
        if selector == ERROR_STRING_SELECTOR:
            (text,) = decode(["string"], body)
            return text
        if selector == PANIC_SELECTOR:
            (code,) = decode(["uint256"], body)
            return f"panic 0x{code:02x}"
        if custom_errors and selector in custom_errors:
            err = custom_errors[selector]
            values = decode(list(err.input_types), body)
            return f"{err.name}({', '.join(str(v) for v in values)})"
    except Exception:  # malformed revert data: fall through to the raw form
        pass
    return f"revert data 0x{data.hex()}"
