"""The check-digit rules of Chinese identity and company numbers, and Luhn for bank cards.

Each function takes the bare characters (no spaces or dashes) and answers whether the number is
well formed; a recognizer only reports what passes, so a lookalike with a wrong check digit is
left alone.
"""

from __future__ import annotations

import datetime as dt

#: GB 11643-1999: weights 2^(17-i) mod 11 and the check character for each remainder
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

#: GB/T 2260 province-level codes (the first two digits of a region code); 81/82/83 are the
#: residence permits of Hong Kong, Macau and Taiwan residents
PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83}
)

#: GB 32100-2015: the 31 characters of a Unified Social Credit Code (no I, O, S, V, Z) and
#: the weights 3^i mod 31
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(USCC_CHARS)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits of an ID number."""
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def plausible_region(code: str) -> bool:
    """A six-digit region code whose province exists (county tables change every year; the
    provinces do not)."""
    return len(code) == 6 and code.isdigit() and int(code[:2]) in PROVINCES


def valid_date(yyyymmdd: str, *, today: dt.date | None = None) -> bool:
    """A real calendar date from 1900 up to today."""
    try:
        day = dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return dt.date(1900, 1, 1) <= day <= (today or dt.date.today())


def valid_id_card(number: str) -> bool:
    """A mainland resident ID number: 18 characters (region, birth date, sequence, MOD 11-2
    check; ``x`` or ``X`` last) or the legacy 15 digits (region, YYMMDD in the 1900s)."""
    if len(number) == 18:
        body, check = number[:17], number[17].upper()
        return (
            body.isdigit()
            and plausible_region(body[:6])
            and valid_date(body[6:14])
            and id_check_char(body) == check
        )
    if len(number) == 15 and number.isdigit():
        return plausible_region(number[:6]) and valid_date("19" + number[6:12])
    return False


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of a card number."""
    if not digits.isdigit():
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial + digit`` pass :func:`luhn_ok`."""
    for d in "0123456789":
        if luhn_ok(partial + d):
            return d
    raise AssertionError("unreachable")  # pragma: no cover


def uscc_check_char(first17: str) -> str:
    """The GB 32100-2015 check character of the first 17 characters of a credit code."""
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def valid_uscc(code: str) -> bool:
    """A Unified Social Credit Code: 18 characters of the code's alphabet, a region code that
    is six digits, and the check character."""
    code = code.upper()
    if len(code) != 18 or any(c not in _USCC_VALUE for c in code):
        return False
    if not code[2:8].isdigit() or code[0] == "0" or code[1] == "0":
        return False
    return uscc_check_char(code[:17]) == code[17]
