"""Each built-in recognizer: what it finds, and the lookalikes it must leave alone."""

from __future__ import annotations

import pytest

from hanlin.guard.checksums import (
    id_check_char,
    luhn_check_digit,
    luhn_ok,
    uscc_check_char,
    valid_id_card,
    valid_uscc,
)
from hanlin.guard.detect import Detector, detector
from hanlin.guard.recognizers import BUILTIN


def _id(first17: str) -> str:
    return first17 + id_check_char(first17)


def _wrong_last(value: str, alphabet: str = "0123456789") -> str:
    return value[:-1] + next(c for c in alphabet if c != value[-1])


def _card(partial: str) -> str:
    return partial + luhn_check_digit(partial)


ID_OK = _id("11010519491231002")  # GB 11643's own example: 11010519491231002X
CARD_OK = _card("622202020000123456")
USCC_OK = "91350100M000100Y4" + uscc_check_char("91350100M000100Y4")


def found(text: str, d: Detector | None = None) -> list[tuple[str, str]]:
    return [(e.kind, e.value) for e in (d or detector()).find(text)]


def test_the_checksums_match_the_standards_examples() -> None:
    assert ID_OK == "11010519491231002X"
    assert valid_id_card("11010519491231002x")
    assert valid_uscc("91350100M000100Y43")
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"身份证号{ID_OK}。", [("ID_CARD", ID_OK)]),
        (f"ID {ID_OK.lower()} ok", [("ID_CARD", ID_OK.lower())]),
        (
            f"号码 {ID_OK[:6]} {ID_OK[6:14]} {ID_OK[14:]} 完",
            [("ID_CARD", f"{ID_OK[:6]} {ID_OK[6:14]} {ID_OK[14:]}")],
        ),
        ("旧证 110105491231002 有效", [("ID_CARD", "110105491231002")]),
        (f"错一位 {_wrong_last(ID_OK)} 不算", []),
        ("生日不对 " + _id("11010519491331002") + " 不算", []),  # month 13
        ("地区不对 " + _id("99010519491231002") + " 不算", []),  # no province 99
        (f"嵌在长数字里 9{ID_OK}9", []),
    ],
)
def test_id_cards(text: str, expected: list[tuple[str, str]]) -> None:
    assert [f for f in found(text) if f[0] == "ID_CARD"] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("电话13812345678联系", ["13812345678"]),
        ("call +86 138-1234-5678 now", ["+86 138-1234-5678"]),
        ("拨打 0086 13912345678", ["0086 13912345678"]),
        ("(+86)15012345678", ["(+86)15012345678"]),
        ("全角 １３８１２３４５６７８ 号", ["１３８１２３４５６７８"]),
        ("138 1234 5678", ["138 1234 5678"]),
        ("未分配号段 12012345678 和 14012345678", []),
        ("订单 2138123456789 不是手机", []),
    ],
)
def test_mobiles(text: str, expected: list[str]) -> None:
    assert [v for k, v in found(text) if k == "PHONE"] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("座机 010-62345678", ["010-62345678"]),
        ("(0755) 2345678 转", ["(0755) 2345678"]),
        ("+86 21 52345678", ["+86 21 52345678"]),
        ("number 0571-1234567", []),  # a local number never starts with 1
    ],
)
def test_landlines(text: str, expected: list[str]) -> None:
    assert [v for k, v in found(text) if k == "LANDLINE"] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"卡号 {CARD_OK}", [CARD_OK]),
        (
            f"card {CARD_OK[:4]} {CARD_OK[4:8]} {CARD_OK[8:12]} {CARD_OK[12:16]} {CARD_OK[16:]}",
            [f"{CARD_OK[:4]} {CARD_OK[4:8]} {CARD_OK[8:12]} {CARD_OK[12:16]} {CARD_OK[16:]}"],
        ),
        ("visa 4111-1111-1111-1111", ["4111-1111-1111-1111"]),
        (f"Luhn 不对 {_wrong_last(CARD_OK)}", []),
        ("no scheme prefix " + _card("123456789012345"), []),
    ],
)
def test_bank_cards(text: str, expected: list[str]) -> None:
    assert [v for k, v in found(text) if k == "BANK_CARD"] == expected


def test_an_id_number_that_also_passes_luhn_is_an_id_number() -> None:
    # an 18-digit valid ID whose digits also pass Luhn with a card prefix would be both
    d = detector()
    for seq in range(1000):
        candidate = _id(f"62010519850101{seq:03d}")
        if candidate[-1] != "X" and luhn_ok(candidate):
            assert found(candidate, d) == [("ID_CARD", candidate)]
            return
    pytest.fail("no ID number passing Luhn in the range")  # pragma: no cover


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"统一社会信用代码：{USCC_OK}", [USCC_OK]),
        (f"lower {USCC_OK.lower()}", [USCC_OK.lower()]),
        (f"校验错 {_wrong_last(USCC_OK, 'ABCDEFGH')}", []),
        ("含 I/O 字母 91350100I000100O43", []),
    ],
)
def test_credit_codes(text: str, expected: list[str]) -> None:
    assert [v for k, v in found(text) if k == "USCC"] == expected


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("护照号E12345678。", "PASSPORT", ["E12345678"]),
        ("passport EA1234567", "PASSPORT", ["EA1234567"]),
        ("型号 XE12345678 不是", "PASSPORT", []),
        ("港澳通行证C12345678", "PERMIT", ["C12345678"]),
        ("新版 CA1234567", "PERMIT", ["CA1234567"]),
        ("回乡证 H1234567801", "PERMIT", ["H1234567801"]),
        ("台胞证号码：12345678", "PERMIT", ["12345678"]),
        ("编号 12345678", "PERMIT", []),
        ("车牌京A·12345", "PLATE", ["京A·12345"]),
        ("新能源 粤BD12345 和 沪A12345F", "PLATE", ["粤BD12345", "沪A12345F"]),
        ("新ADDRESS 不是车牌", "PLATE", []),
    ],
)
def test_documents_and_plates(text: str, kind: str, expected: list[str]) -> None:
    assert [v for k, v in found(text) if k == kind] == expected


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("写信给 zhang.san@example.com.cn 吧", "EMAIL", ["zhang.san@example.com.cn"]),
        ("not @ an email", "EMAIL", []),
        ("服务器 192.168.1.10 上", "IP", ["192.168.1.10"]),
        ("版本 1.2.3.4.5 和 256.1.1.1", "IP", []),
        ("v6 2001:db8::8a2e:370:7334 end", "IP", ["2001:db8::8a2e:370:7334"]),
        ("C++ std::cout and 12:30:45", "IP", []),
        ("postgresql://app:s3cr3t@db:5432/x", "URL_CREDENTIALS", ["app:s3cr3t"]),
        ("https://example.com/a:b@c", "URL_CREDENTIALS", []),
        ("key sk-abcdefghijklmnopqrstuvwx here", "SECRET", ["sk-abcdefghijklmnopqrstuvwx"]),
        ("aws AKIAABCDEFGHIJKLMNOP", "SECRET", ["AKIAABCDEFGHIJKLMNOP"]),
        ("Authorization: Bearer abcdefghijklmnop123", "SECRET", ["abcdefghijklmnop123"]),
        ("sk-short", "SECRET", []),
    ],
)
def test_network_and_secrets(text: str, kind: str, expected: list[str]) -> None:
    assert [v for k, v in found(text) if k == kind] == expected


def test_entities_filter_and_unknown_types() -> None:
    from hanlin.errors import ConfigError

    only = detector((), ("PHONE",))
    text = f"13812345678 {ID_OK}"
    assert found(text, only) == [("PHONE", "13812345678")]
    with pytest.raises(ConfigError, match="PHONEE"):
        detector((), ("PHONEE",))


def test_every_builtin_recognizer_is_registered_and_on_by_default() -> None:
    from hanlin.guard.base import RECOGNIZERS

    names = {cls.name for cls in BUILTIN}
    assert names <= set(RECOGNIZERS.names())
    assert {type(r).name for r in detector().recognizers} == names  # jieba_person is opt-in


def test_a_plugin_recognizer_registers_like_a_builtin() -> None:
    from collections.abc import Iterator
    from typing import ClassVar

    from hanlin.guard.base import RECOGNIZERS

    class Employee:
        name: ClassVar[str] = "employee_ids"
        entities: ClassVar[tuple[str, ...]] = ("EMPLOYEE",)
        default: ClassVar[bool] = False

        def find(self, text: str) -> Iterator[tuple[str, int, int]]:
            i = text.find("EMP-")
            if i >= 0:
                yield "EMPLOYEE", i, i + 8

    RECOGNIZERS.register("employee_ids", Employee)
    try:
        d = detector(("employee_ids", "phone"))
        assert found("EMP-1234 13812345678", d) == [
            ("EMPLOYEE", "EMP-1234"),
            ("PHONE", "13812345678"),
        ]
    finally:
        RECOGNIZERS.unregister("employee_ids")
        detector.cache_clear()


def test_person_names_are_opt_in() -> None:
    d = detector(("jieba_person",))
    assert ("PERSON", "王小明") in found("王小明在上海工作。", d)
    assert not [k for k, _ in found("王小明在上海工作。") if k == "PERSON"]
