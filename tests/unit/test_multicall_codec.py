from eth_abi import encode
from hypothesis import given
from hypothesis import strategies as st

from keeper.chain.multicall import (
    Call,
    CallResult,
    ResultLayout,
    decode_aggregate3,
    decode_results,
    encode_aggregate3,
    result_offsets,
    successful_payloads,
    word_int,
    word_uint,
)


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


def _same_padding(length: int) -> st.SearchStrategy[int]:
    """A length whose ABI padding is the same as `length`'s (the element keeps its size)."""
    padded = -(-length // 32) * 32
    return st.just(0) if padded == 0 else st.integers(padded - 31, padded)


@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=100)), max_size=12), st.data())
def test_given_an_answer_with_the_same_element_sizes_when_reading_it_by_layout_then_each_span_is_its_result(
        results, data) -> None:
    # Given the layout of one answer
    first = encode(["(bool,bytes)[]"], [results])
    layout = ResultLayout.of(first)
    assert layout is not None and decode_results(first, layout.elements) == decode_aggregate3(first)
    # When another answer's results keep each element's size (lengths may differ within the padding)
    other = [(data.draw(st.booleans()), data.draw(st.binary(min_size=n, max_size=n)))
             for n in (data.draw(_same_padding(len(d))) for _, d in results)]
    second = encode(["(bool,bytes)[]"], [other])
    # Then the layout fits it, a span's bytes are equal exactly when its result is, and it decodes
    assert layout.fits(second, first)
    for i, (was, now) in enumerate(zip(results, other)):
        start, end = layout.span(i, 1)
        assert (first[start:end] == second[start:end]) == (was == now)
        assert decode_results(second, layout.elements[i:i + 1]) == [CallResult(*now)]
    # And an answer with one more result does not fit
    assert not layout.fits(encode(["(bool,bytes)[]"], [results + [(True, b"")]]), first)


@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=100)), max_size=12))
def test_given_any_answer_when_reading_the_payloads_then_they_are_the_results_data_or_none_on_a_failure(results) -> None:
    # Given an aggregate3 answer, as solc encodes it
    data = encode(["(bool,bytes)[]"], [results])
    # When its payloads are read
    payloads = successful_payloads(data, result_offsets(data))
    # Then they are the results' data when every call succeeded with data, else None
    if all(ok and d for ok, d in results):
        assert payloads == [d for _, d in results]
    else:
        assert payloads is None


def test_given_bytes_not_right_after_the_head_when_reading_the_payloads_then_the_offset_word_is_followed() -> None:
    # Given a Result whose bytes start one word after its head (valid ABI, not what solc writes)
    word = (32).to_bytes(32, "big")
    element = (1).to_bytes(32, "big") + (96).to_bytes(32, "big") + bytes(32) + (3).to_bytes(32, "big") + b"abc" + bytes(29)
    data = word + (1).to_bytes(32, "big") + word + element
    # Then the payload is the bytes the offset word points at, as the full decoder reads them
    assert decode_aggregate3(data) == [CallResult(True, b"abc")]
    assert successful_payloads(data, result_offsets(data)) == [b"abc"]
