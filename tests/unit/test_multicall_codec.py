from eth_abi import encode
from hypothesis import given
from hypothesis import strategies as st

from keeper.chain.multicall import Call, decode_aggregate3, encode_aggregate3, word_int, word_uint


@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=200)), max_size=20))
def test_given_any_results_when_decoding_by_hand_then_it_matches_the_abi(results) -> None:
    data = encode(["(bool,bytes)[]"], [results])
    decoded = decode_aggregate3(data)
    assert [(r.success, r.return_data) for r in decoded] == results


def test_given_calls_when_encoding_then_selector_and_allow_failure_are_set() -> None:
    calls = [Call("0x" + "11" * 20, b"\x01\x02", "a"), Call("0x" + "22" * 20, b"", "b")]
    data = encode_aggregate3(calls)
    assert data[:4].hex() == "82ad56cb"  # aggregate3((address,bool,bytes)[])
    assert data[4:] == encode(["(address,bool,bytes)[]"], [[("0x" + "11" * 20, True, b"\x01\x02"),
                                                               ("0x" + "22" * 20, True, b"")]])


def test_given_signed_words_when_decoding_then_twos_complement_is_respected() -> None:
    data = encode(["int256", "uint256"], [-5, 2**255])
    assert word_int(data, 0) == -5
    assert word_uint(data, 1) == 2**255


@given(st.lists(st.tuples(st.binary(min_size=20, max_size=20), st.binary(max_size=100)), max_size=12))
def test_given_any_calls_when_encoding_by_hand_then_it_matches_the_abi(calls) -> None:
    as_calls = [Call("0x" + target.hex(), data, "x") for target, data in calls]
    expected = encode(["(address,bool,bytes)[]"], [[("0x" + t.hex(), True, d) for t, d in calls]])
    assert encode_aggregate3(as_calls) == bytes.fromhex("82ad56cb") + expected
