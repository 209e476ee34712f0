"""The built-in recognizers: numbers with their check digits validated (ID cards, bank cards,
credit codes), the shapes of phone, passport, permit and plate numbers, and the network ones
(e-mail, IP, credentials in URLs, API keys).

Each is a pattern for candidates plus a validator; only candidates that validate are reported,
so a lookalike with a wrong check digit or an impossible date stays in the text. Numbers may
carry single spaces or dashes between their usual groups (``138 1234 5678``,
``6222-0202-0000-1234``); digits next to a match make it no match (a phone number is not
found inside a longer number).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import ClassVar

from hanlin.guard.base import RECOGNIZERS
from hanlin.guard.checksums import luhn_ok, valid_id_card, valid_uscc
from hanlin.guard.secrets import KEY_SHAPES

Found = Iterator[tuple[str, int, int]]
_SEP = r"[ \-]?"


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isalnum())


class PatternRecognizer:
    """A regex for candidates, an optional validator of the matched text, one entity type.

    ``group`` picks the part of the match that is the entity (a URL's credentials, not the
    URL); ``needle`` is a substring any match must contain, checked first to skip text that
    cannot hold one.
    """

    name: ClassVar[str]
    entities: ClassVar[tuple[str, ...]]
    default: ClassVar[bool] = True
    pattern: ClassVar[re.Pattern[str]]
    needle: ClassVar[str | None] = None
    group: ClassVar[int] = 0

    def valid(self, candidate: str) -> bool:
        return True

    def find(self, text: str) -> Found:
        if self.needle is not None and self.needle not in text:
            return
        kind = self.entities[0]
        for m in self.pattern.finditer(text):
            if self.valid(m.group(self.group)):
                yield kind, m.start(self.group), m.end(self.group)


@RECOGNIZERS.register("id_card")
class IdCardRecognizer(PatternRecognizer):
    """Resident ID numbers: region code, birth date and the MOD 11-2 check; legacy 15 digits."""

    name = "id_card"
    entities: ClassVar[tuple[str, ...]] = ("ID_CARD",)
    pattern = re.compile(
        rf"(?<![0-9A-Za-z])(?:[1-9][0-9]{{5}}{_SEP}(?:18|19|20)[0-9]{{2}}[01][0-9][0-3][0-9]"
        rf"{_SEP}[0-9]{{3}}[0-9Xx]|[1-9][0-9]{{7}}[01][0-9][0-3][0-9][0-9]{{3}})(?![0-9A-Za-z])"
    )

    def valid(self, candidate: str) -> bool:
        return valid_id_card(_digits(candidate))


#: allocated mobile prefixes (MIIT numbering plan)
_MOBILE_PREFIX = re.compile(r"1(?:3[0-9]|4[5-9]|5[0-35-9]|6[2567]|7[0-8]|8[0-9]|9[0-9])")


@RECOGNIZERS.register("phone")
class PhoneRecognizer(PatternRecognizer):
    """Mainland mobile numbers of an allocated prefix, with +86 / 0086 / (+86) and separators."""

    name = "phone"
    entities: ClassVar[tuple[str, ...]] = ("PHONE",)
    pattern = re.compile(
        rf"(?<![0-9+])(?:(?:\+|00)86{_SEP}|\(\+?86\){_SEP})?"
        rf"(1[3-9][0-9]){_SEP}[0-9]{{4}}{_SEP}[0-9]{{4}}(?![0-9])"
    )

    def find(self, text: str) -> Found:
        for m in self.pattern.finditer(text):
            if _MOBILE_PREFIX.fullmatch(m.group(1)):
                yield "PHONE", m.start(), m.end()


@RECOGNIZERS.register("landline")
class LandlineRecognizer(PatternRecognizer):
    """Landline numbers with an area code: ``010-12345678``, ``(0755) 1234567``,
    ``+86 21 12345678``; the local number starts with 2-8."""

    name = "landline"
    entities: ClassVar[tuple[str, ...]] = ("LANDLINE",)
    _area = r"(?:10|2[0-9]|[3-9][0-9]{2})"
    pattern = re.compile(
        rf"(?<![0-9+])(?:(?:\+|00)86{_SEP}{_area}|\(0{_area}\)|0{_area})"
        rf"{_SEP}[2-8][0-9]{{6,7}}(?![0-9])"
    )


@RECOGNIZERS.register("bank_card")
class BankCardRecognizer(PatternRecognizer):
    """Card numbers of 16-19 digits with a card-scheme prefix (UnionPay 62, Visa 4, Mastercard
    51-55 / 22-27, JCB 35, 60/65, ICBC 9558) and a valid Luhn check."""

    name = "bank_card"
    entities: ClassVar[tuple[str, ...]] = ("BANK_CARD",)
    pattern = re.compile(r"(?<![0-9])[0-9]{4}(?:[ \-]?[0-9]{4}){2,3}(?:[ \-]?[0-9]{1,3})?(?![0-9])")
    _prefix = re.compile(r"(?:4|5[1-5]|2[2-7]|35|6[025]|955[89])")

    def valid(self, candidate: str) -> bool:
        digits = _digits(candidate)
        return 16 <= len(digits) <= 19 and bool(self._prefix.match(digits)) and luhn_ok(digits)


@RECOGNIZERS.register("uscc")
class UsccRecognizer(PatternRecognizer):
    """Unified Social Credit Codes (18 characters, GB 32100-2015 check character)."""

    name = "uscc"
    entities: ClassVar[tuple[str, ...]] = ("USCC",)
    _c = "[0-9A-HJ-NPQRTUWXYa-hj-npqrtuwxy]"
    pattern = re.compile(rf"(?<![0-9A-Za-z])[1-9ANYany][1-9][0-9]{{6}}{_c}{{9}}{_c}(?![0-9A-Za-z])")

    def valid(self, candidate: str) -> bool:
        return valid_uscc(candidate)


@RECOGNIZERS.register("passport")
class PassportRecognizer(PatternRecognizer):
    """PRC passports: ``E`` + letter + 7 digits (since 2019), ``E``/``G`` + 8 digits, and the
    diplomatic / service / public-affairs ``D``, ``S``, ``P`` (+ ``E``) series."""

    name = "passport"
    entities: ClassVar[tuple[str, ...]] = ("PASSPORT",)
    pattern = re.compile(
        r"(?<![0-9A-Za-z])(?:E[A-HJ-NP-Z][0-9]{7}|[EGDSP][0-9]{8}|[DSP]E[0-9]{7})(?![0-9A-Za-z])"
    )


@RECOGNIZERS.register("permit")
class PermitRecognizer(PatternRecognizer):
    """Travel permits: mainland residents' to Hong Kong / Macau (``C`` + 8, ``C`` + letter + 7,
    old ``W`` + 8) and to Taiwan (``L`` + 8); Hong Kong / Macau residents' home-return permits
    (``H`` / ``M`` + 8, + 2 renewal digits); Taiwan residents' permits (8 or 10 digits) only
    after their name (台胞证 …), as bare digits say nothing on their own."""

    name = "permit"
    entities: ClassVar[tuple[str, ...]] = ("PERMIT",)
    pattern = re.compile(
        r"(?<![0-9A-Za-z])(?:C[0-9]{8}|C[A-HJ-NP-Z][0-9]{7}|W[0-9]{8}|L[0-9]{8}"
        r"|[HM][0-9]{8}(?:[0-9]{2})?)(?![0-9A-Za-z])"
        r"|(?:台胞证|台湾居民来往大陆通行证)(?:号码|号)?[:：]?\s*([0-9]{8}|[0-9]{10})(?![0-9])"
    )

    def find(self, text: str) -> Found:
        for m in self.pattern.finditer(text):
            g = 1 if m.group(1) is not None else 0
            yield "PERMIT", m.start(g), m.end(g)


_PROVINCE_CHARS = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"


@RECOGNIZERS.register("plate")
class PlateRecognizer(PatternRecognizer):
    """Licence plates: province + letter + five characters (at most two letters), or a
    new-energy plate (``D``/``F`` + 5 or 5 digits + ``D``/``F``); ``·`` or a space may follow
    the letter."""

    name = "plate"
    entities: ClassVar[tuple[str, ...]] = ("PLATE",)
    _a = "[A-HJ-NP-Z0-9]"
    pattern = re.compile(
        rf"[{_PROVINCE_CHARS}][A-HJ-NP-Z][ ·•.]?"
        rf"(?:[DF]{_a}[0-9]{{4}}|[0-9]{{5}}[DF]|{_a}{{4}}[A-HJ-NP-Z0-9挂学警港澳])(?![A-Za-z0-9])"
    )

    def valid(self, candidate: str) -> bool:
        tail = [c for c in candidate[2:] if c not in " ·•."]
        return len(tail) == 6 or sum(c.isascii() and c.isalpha() for c in tail) <= 2


@RECOGNIZERS.register("email")
class EmailRecognizer(PatternRecognizer):
    name = "email"
    entities: ClassVar[tuple[str, ...]] = ("EMAIL",)
    needle = "@"
    pattern = re.compile(
        r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@"
        r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9])"
    )


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"


@RECOGNIZERS.register("ip")
class IpRecognizer(PatternRecognizer):
    """IPv4 (not inside a longer dotted version number) and IPv6 addresses with at least three
    groups (``std::cout`` is code, not an address)."""

    name = "ip"
    entities: ClassVar[tuple[str, ...]] = ("IP",)
    pattern = re.compile(
        rf"(?<![0-9.])(?=[0-9]{{1,3}}\.[0-9])(?:{_OCTET}\.){{3}}{_OCTET}(?![0-9]|\.[0-9])"
    )
    v6 = re.compile(
        r"(?<![0-9A-Za-z_:])(?=[0-9A-Fa-f:]{2,}:)"
        r"(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Za-z_:])"
    )

    def find(self, text: str) -> Found:
        if "." in text:
            for m in self.pattern.finditer(text):
                yield "IP", m.start(), m.end()
        if ":" in text:
            for m in self.v6.finditer(text):
                if self.valid(m.group()):
                    yield "IP", m.start(), m.end()

    def valid(self, candidate: str) -> bool:
        if sum(1 for g in candidate.split(":") if g) < 3:
            return False
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            return False
        return True


@RECOGNIZERS.register("url_credentials")
class UrlCredentialsRecognizer(PatternRecognizer):
    """The ``user:password`` of a URL (``postgresql://app:s3cret@db/x``); the rest of the URL
    stays readable."""

    name = "url_credentials"
    entities: ClassVar[tuple[str, ...]] = ("URL_CREDENTIALS",)
    needle = "://"
    group = 1
    pattern = re.compile(
        r"(?<![A-Za-z0-9])[A-Za-z][A-Za-z0-9+.\-]{0,20}://([^\s/@:]{1,128}:[^\s/@]{1,256})@"
    )


@RECOGNIZERS.register("secrets")
class SecretRecognizer(PatternRecognizer):
    """API keys, tokens and private keys of the shapes in :mod:`hanlin.guard.secrets`."""

    name = "secrets"
    entities: ClassVar[tuple[str, ...]] = ("SECRET",)
    pattern = KEY_SHAPES


#: built-in recognizers in the order their entities win a tie over the same characters
BUILTIN: tuple[type[PatternRecognizer], ...] = (
    IdCardRecognizer,
    UsccRecognizer,
    BankCardRecognizer,
    PhoneRecognizer,
    LandlineRecognizer,
    PassportRecognizer,
    PermitRecognizer,
    PlateRecognizer,
    SecretRecognizer,
    UrlCredentialsRecognizer,
    EmailRecognizer,
    IpRecognizer,
)
