"""PII detectors: each returns (start, end, kind) spans over a string, never the matched values.

All built-in patterns are ASCII-only (re.ASCII), so CJK text right next to a match counts as a
boundary ("我的電話是0912-345-678") and full-width digits are not read as numbers. A regex only
proposes candidates; a validator (digit counts, the national ID check digit, Luhn) decides. When
a candidate is rejected the search resumes one character later, so a valid number that starts
inside a rejected candidate is still found.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

EMAIL = "email"
PHONE = "phone"
TW_NATIONAL_ID = "tw_national_id"
CREDIT_CARD = "credit_card"
BUILTIN_KINDS = (EMAIL, PHONE, TW_NATIONAL_ID, CREDIT_CARD)


class Span(NamedTuple):
    start: int
    end: int
    kind: str


Finder = Callable[[str], list[Span]]

_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![A-Za-z0-9\-])",
    re.ASCII,
)
# The boundary look-behinds come after each pattern's first character, as "(?<!X.)": a pattern
# that starts with a plain character set lets `re` skip ahead to candidates instead of testing
# every position (5x faster on prose).
_NOT_AFTER_PHONE = r"(?<![\w+\-].)"
# Taiwan: mobile 09xx-xxx-xxx (either separator optional); landline with the area code in
# parentheses or followed by a separator, as a bare 0223456789 is too much like an order number.
# International: + country code and digits, spaces/dashes and one parenthesised group such as
# "+1 (415)" or "+886 (0)2"; +886 numbers are covered by this form.
_PHONE_RE = re.compile(
    rf"(?:\+{_NOT_AFTER_PHONE}[1-9](?:[ \-]?\(\d{{1,4}}\)|[ \-]?\d){{6,20}}"
    rf"|0{_NOT_AFTER_PHONE}9\d\d[ \-]?\d{{3}}[ \-]?\d{{3}}"
    rf"|\({_NOT_AFTER_PHONE}0[2-8]\d{{0,2}}\) ?\d{{2,4}}[ \-]?\d{{3,4}}"
    rf"|0{_NOT_AFTER_PHONE}[2-8]\d{{0,2}}[ \-]\d{{2,4}}[ \-]?\d{{3,4}}"
    r")(?!\w)(?!-\d)",
    re.ASCII,
)
# Starts at the digit after the letter, for the same reason; find_tw_national_ids adds it back.
_TW_ID_RE = re.compile(r"[1289](?<=[A-Za-z].)(?<![A-Za-z0-9_]..)\d{8}(?![A-Za-z0-9_])", re.ASCII)
# 13-19 digits contiguous, or grouped 4-4-4-(1..4)[-(1..3)] / 4-6-(4..5) with one separator kind.
_CARD_RE = re.compile(
    r"\d(?<!\w\d)(?:\d{12,18}"
    r"|\d{3}(?P<s>[ \-])\d{4}(?P=s)\d{4}(?P=s)\d{1,4}(?:(?P=s)\d{1,3})?"
    r"|\d{3}(?P<t>[ \-])\d{6}(?P=t)\d{4,5}"
    r")(?!\w)(?!-\d)",
    re.ASCII,
)
# Every phone, ID and card match holds one of these (a phone's subscriber part has at least
# 2 + 3 digits); text without either skips those detectors. ISO dates and times have neither.
_NUMERIC_HINT_RE = re.compile(r"\d\d[ \-]?\d{3}", re.ASCII)
_PLUS_DIGIT_RE = re.compile(r"\+\d", re.ASCII)
_NON_DIGITS_RE = re.compile(r"\D", re.ASCII)

# Letter codes of the national ID check digit (Ministry of the Interior scheme). Not
# alphabetical: I, O, W-Z were added after the original 20 letters.
TW_ID_LETTER_CODES: dict[str, int] = {
    "A": 10,
    "B": 11,
    "C": 12,
    "D": 13,
    "E": 14,
    "F": 15,
    "G": 16,
    "H": 17,
    "I": 34,
    "J": 18,
    "K": 19,
    "L": 20,
    "M": 21,
    "N": 22,
    "O": 35,
    "P": 23,
    "Q": 24,
    "R": 25,
    "S": 26,
    "T": 27,
    "U": 28,
    "V": 29,
    "W": 32,
    "X": 30,
    "Y": 31,
    "Z": 33,
}
# Card numbers start with major industry identifier 2-6 (Mastercard 2-series, Amex/JCB/Diners,
# Visa, Mastercard, Discover/UnionPay); this keeps e.g. 13-digit millisecond timestamps out.
_CARD_FIRST_DIGITS = frozenset("23456")


def numeric_hint(text: str) -> bool:
    """Whether `text` could hold a phone, national ID or card number (cheap pre-check)."""
    if _NUMERIC_HINT_RE.search(text) is not None:
        return True
    return "+" in text and _PLUS_DIGIT_RE.search(text) is not None


def tw_national_id_valid(value: str) -> bool:
    """A letter, 1/2 (citizen) or 8/9 (resident certificate), 7 digits, the check digit."""
    if len(value) != 10 or not value[1:].isascii() or not value[1:].isdigit():
        return False
    code = TW_ID_LETTER_CODES.get(value[0].upper())
    if code is None or value[1] not in "1289":
        return False
    total = code // 10 + code % 10 * 9 + int(value[9])
    total += sum(int(d) * w for d, w in zip(value[1:9], range(8, 0, -1), strict=True))
    return total % 10 == 0


def luhn_valid(digits: str) -> bool:
    if not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _phone_valid(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    if candidate.startswith("+"):
        return 8 <= digits <= 15 and candidate.count("(") <= 1
    return candidate.startswith("09") or 9 <= digits <= 10


def _card_valid(candidate: str) -> bool:
    digits = _NON_DIGITS_RE.sub("", candidate)
    return 13 <= len(digits) <= 19 and digits[0] in _CARD_FIRST_DIGITS and luhn_valid(digits)


def _scan(
    regex: re.Pattern[str], text: str, kind: str, valid: Callable[[str], bool], lead: int = 0
) -> list[Span]:
    spans: list[Span] = []
    pos = 0
    while (m := regex.search(text, pos)) is not None:
        start = m.start() - lead
        if valid(text[start : m.end()]):
            spans.append(Span(start, m.end(), kind))
            pos = m.end()
        else:
            pos = m.start() + 1
    return spans


def find_emails(text: str) -> list[Span]:
    if "@" not in text:
        return []
    return [Span(m.start(), m.end(), EMAIL) for m in _EMAIL_RE.finditer(text)]


def find_phones(text: str) -> list[Span]:
    return _scan(_PHONE_RE, text, PHONE, _phone_valid)


def find_tw_national_ids(text: str) -> list[Span]:
    return _scan(_TW_ID_RE, text, TW_NATIONAL_ID, tw_national_id_valid, lead=1)


def find_credit_cards(text: str) -> list[Span]:
    return _scan(_CARD_RE, text, CREDIT_CARD, _card_valid)


def builtin_finders() -> dict[str, Finder]:
    """The detector of each built-in kind (looked up at call time, so tests can substitute)."""
    return {
        EMAIL: find_emails,
        PHONE: find_phones,
        TW_NATIONAL_ID: find_tw_national_ids,
        CREDIT_CARD: find_credit_cards,
    }


def merge_spans(spans: list[Span]) -> list[Span]:
    """Sorted, non-overlapping spans; overlapping ones merge under the longest one's kind.

    Merging (rather than dropping the loser) keeps any fragment of either match from showing;
    on equal lengths the earliest span names the group.
    """
    spans.sort(key=lambda s: (s.start, s.start - s.end))
    merged: list[Span] = []
    best = 0
    for span in spans:
        if merged and span.start < merged[-1].end:
            group = merged[-1]
            kind = span.kind if span.end - span.start > best else group.kind
            best = max(best, span.end - span.start)
            merged[-1] = Span(group.start, max(group.end, span.end), kind)
        else:
            merged.append(span)
            best = span.end - span.start
    return merged


class CustomPattern:
    """A named regular expression from a system's policy, compiled once."""

    __slots__ = ("name", "regex")

    def __init__(self, name: str, pattern: str) -> None:
        self.name = name
        self.regex = re.compile(pattern)

    def find(self, text: str) -> list[Span]:
        return [
            Span(m.start(), m.end(), self.name)
            for m in self.regex.finditer(text)
            if m.end() > m.start()
        ]
