from eth_abi import encode

from keeper.chain.abi import ContractAbi, describe_revert
from keeper.devnet.txs import create_address

ABI = [
    {"type": "function", "name": "f", "inputs": [{"type": "uint256", "name": "x"}], "outputs": [{"type": "bool", "name": ""}]},
    {"type": "function", "name": "f", "inputs": [{"type": "uint256", "name": "x"}, {"type": "address", "name": "y"}],
     "outputs": []},
    {"type": "function", "name": "open", "outputs": [],
     "inputs": [{"type": "tuple", "name": "p", "components": [{"type": "address", "name": "a"}, {"type": "bool", "name": "b"},
                                                              {"type": "int24[]", "name": "c"}]}]},
    {"type": "error", "name": "ProfitBelowMin", "inputs": [{"type": "uint256", "name": "got"}, {"type": "uint256", "name": "min"}]},
]


def test_given_overloads_when_encoding_then_the_overload_with_matching_arity_is_used() -> None:
    abi = ContractAbi(ABI, "T")
    one = abi.encode("f", 5)
    two = abi.encode("f", 5, "0x" + "11" * 20)
    assert one[:4] == bytes.fromhex("b3de648b")  # keccak("f(uint256)")[:4]
    assert two[:4] != one[:4]
    assert one[4:] == encode(["uint256"], [5])


def test_given_a_struct_param_when_encoding_then_its_canonical_tuple_signature_is_hashed() -> None:
    abi = ContractAbi(ABI, "T")
    assert abi.fn("open").signature == "open((address,bool,int24[]))"
    data = abi.encode("open", ("0x" + "22" * 20, True, [-60, 60]))
    assert data[4:] == encode(["(address,bool,int24[])"], [("0x" + "22" * 20, True, [-60, 60])])


def test_given_revert_payloads_when_described_then_they_are_readable() -> None:
    abi = ContractAbi(ABI, "T")
    error_string = bytes.fromhex("08c379a0") + encode(["string"], ["CH_OMPS"])
    assert abi.describe_revert(error_string) == "CH_OMPS"
    panic = bytes.fromhex("4e487b71") + encode(["uint256"], [0x11])
    assert describe_revert(panic) == "panic 0x11"
    from eth_utils import keccak

    custom = keccak(text="ProfitBelowMin(uint256,uint256)")[:4] + encode(["uint256", "uint256"], [3, 7])
    assert abi.describe_revert(custom) == "ProfitBelowMin(3, 7)"
    unknown = bytes.fromhex("deadbeef") + encode(["uint256"], [1])
    assert abi.describe_revert(unknown).startswith("revert data 0xdeadbeef")
    assert describe_revert(b"") == "reverted without data"


def test_given_anvil_first_account_when_predicting_create_addresses_then_they_match_known_values() -> None:
    deployer = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert create_address(deployer, 0) == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    assert create_address(deployer, 1) == "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
