"""keeper/frozen.py: a quick_init class behaves as the frozen dataclass it was."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from keeper.frozen import quick_init


@quick_init
@dataclasses.dataclass(frozen=True)
class Fill:
    size_raw: int
    price_x18: int
    note: str = "open"


@quick_init
@dataclasses.dataclass(frozen=True)
class Checked:
    amount_raw: int

    def __post_init__(self) -> None:
        if self.amount_raw < 0:
            raise ValueError(f"amount_raw must be >= 0, got {self.amount_raw}")


def test_given_a_quick_init_class_when_built_then_it_is_the_frozen_dataclass_it_was() -> None:
    # Given instances built positionally, by keyword and with the default
    a, b = Fill(5, 7), Fill(size_raw=5, price_x18=7, note="open")
    # Then fields, equality, hashing, repr, replace and pickling are a frozen dataclass's
    assert (a.size_raw, a.price_x18, a.note) == (5, 7, "open")
    assert a == b and hash(a) == hash(b) and a != Fill(5, 8)
    assert repr(a) == "Fill(size_raw=5, price_x18=7, note='open')"
    assert dataclasses.replace(a, note="close") == Fill(5, 7, "close")
    assert pickle.loads(pickle.dumps(a)) == a
    assert dataclasses.asdict(a) == {"size_raw": 5, "price_x18": 7, "note": "open"}
    # and it stays frozen
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.size_raw = 6  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del a.note  # type: ignore[misc]


def test_given_a_post_init_check_when_built_then_it_still_runs() -> None:
    assert Checked(3).amount_raw == 3
    with pytest.raises(ValueError, match="amount_raw must be >= 0"):
        Checked(-1)


def test_given_a_class_it_cannot_serve_when_decorated_then_it_refuses_naming_it() -> None:
    with pytest.raises(TypeError, match="Plain: quick_init is for"):
        quick_init(dataclasses.dataclass(type("Plain", (), {"__annotations__": {"x": "int"}})))
    with pytest.raises(TypeError, match="Slotted: quick_init needs an instance dict"):
        quick_init(dataclasses.dataclass(frozen=True, slots=True)(type("Slotted", (), {"__annotations__": {"x": "int"}})))
    with pytest.raises(TypeError, match="Factory.items: quick_init takes plain positional init fields only"):
        quick_init(dataclasses.dataclass(frozen=True)(type("Factory", (), {
            "__annotations__": {"items": "list"}, "items": dataclasses.field(default_factory=list)})))


@quick_init
@dataclasses.dataclass(frozen=True)
class Derived:
    ticks: tuple[int, ...]
    count: int = dataclasses.field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "count", len(self.ticks))


def test_given_a_field_its_post_init_sets_when_built_then_it_is_set_and_not_an_argument() -> None:
    assert Derived((1, 2, 3)).count == 3
    with pytest.raises(TypeError):
        Derived((1,), 1)  # type: ignore[call-arg]
