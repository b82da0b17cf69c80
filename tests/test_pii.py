"""PII detection and redaction (shared/protection/pii.py, shared/protection/pii_detectors.py)."""

import copy
import re
from typing import Any

import pytest

from shared.protection import pii_detectors
from shared.protection.pii import PLACEHOLDERS, Findings, PolicyError, Redactor
from shared.protection.pii_detectors import (
    TW_ID_LETTER_CODES,
    CustomPattern,
    Span,
    find_credit_cards,
    find_emails,
    find_phones,
    find_tw_national_ids,
    luhn_valid,
    numeric_hint,
    tw_national_id_valid,
)

# The ID card letter order behind the codes 10..35 (I, O, W-Z were appended out of order).
TW_ID_LETTER_ORDER = "ABCDEFGHJKLMNPQRSTUVXYWZIO"
VALID_TW_IDS = [
    "A123456789",
    "I123456781",
    "O223456784",
    "W135792469",
    "X286420976",
    "Y111111112",
    "Z200000004",
    "A800000014",
    "B812345672",
    "F913579249",
    "I811111119",
]
# Well-known test numbers of the card schemes (Visa, Mastercard, Amex, Discover, JCB, Diners).
VALID_CARDS = [
    "4111111111111111",
    "4012888888881881",
    "4222222222222",
    "5555555555554444",
    "2223003122003222",
    "378282246310005",
    "6011111111111117",
    "3530111333300000",
    "30569309025904",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "3782 822463 10005",
    "6011 0009 9013 9424",
    "4111 1111 1111 1111 003",
]
TW_PHONES = [
    "0912-345-678",
    "0912345678",
    "0912 345 678",
    "0912-345678",
    "+886 912 345 678",
    "+886-912-345-678",
    "+886912345678",
    "(02) 2345-6789",
    "(02)2345-6789",
    "02-2345-6789",
    "02 2345 6789",
    "+886 2 2345 6789",
    "+886 (0)2 2345 6789",
    "03-123-4567",
    "(037) 123456",
    "049-2345678",
    "0826-12345",
]
INTERNATIONAL_PHONES = [
    "+1 415 555 2671",
    "+14155552671",
    "+1 (415) 555-2671",
    "+44 20 7946 0958",
    "+81-3-1234-5678",
    "+852 2345 6789",
    "+65 6123 4567",
]
EMAILS = [
    "alice@example.com",
    "bob.smith+tag@mail.example.co.uk",
    "x_y%z@sub-domain.example.org",
    "ming.wang@corp.com.tw",
    "UPPER@EXAMPLE.COM",
]
NOT_PHONES = [
    "2024-09-12",
    "09/12/2024",
    "2024/09/12 10:30",
    "08-12-2024",
    "05 12 2024",
    "訂單編號 20240912001",
    "order #12345678",
    "SO20240912-0001",
    "INV-0223456789",
    "ticket 0912345678901",
    "ORD0912345678",
    "at 09:12:34",
    "NT$1,234,567",
    "+12345",
    "02-1234",
    "3.1415926535",
    "ISBN 978-986-123-456-7",
    "version 10.0.19045",
    "C++ 20231201",
    "1+2345678901",
    "0912-345-678-9",
]
NOT_EMAILS = [
    "@handle",
    "user@localhost",
    "a@b",
    "foo@bar.c",
    "me [at] example dot com",
    "@property",
    "price @ 3.50",
    "a@@b.com",
]


def matched(finder, text):
    return [text[s.start : s.end] for s in finder(text)]


def chat(*contents):
    return {"model": "m", "messages": [{"role": "user", "content": c} for c in contents]}


# --- Taiwan national ID ---------------------------------------------------------------------


def test_letter_table_matches_the_official_order():
    assert {c: TW_ID_LETTER_ORDER.index(c) + 10 for c in TW_ID_LETTER_ORDER} == TW_ID_LETTER_CODES
    assert (TW_ID_LETTER_CODES["I"], TW_ID_LETTER_CODES["O"], TW_ID_LETTER_CODES["W"]) == (
        34,
        35,
        32,
    )
    assert [TW_ID_LETTER_CODES[c] for c in "XYZ"] == [30, 31, 33]


def reference_check(value):
    # The published method: the letter's two digits and the nine digits, weights 1,9,8..1,1.
    digits = str(TW_ID_LETTER_ORDER.index(value[0]) + 10) + value[1:]
    return (
        sum(int(d) * w for d, w in zip(digits, [1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1], strict=True)) % 10
        == 0
    )


@pytest.mark.parametrize("value", VALID_TW_IDS)
def test_valid_tw_ids(value):
    assert reference_check(value)
    assert tw_national_id_valid(value)
    assert tw_national_id_valid(value.lower())
    assert matched(find_tw_national_ids, f"身分證字號{value}。") == [value]


@pytest.mark.parametrize("value", VALID_TW_IDS)
def test_every_other_check_digit_is_rejected(value):
    for digit in "0123456789":
        if digit != value[-1]:
            wrong = value[:-1] + digit
            assert not tw_national_id_valid(wrong)
            assert find_tw_national_ids(f"ID {wrong}") == []


@pytest.mark.parametrize(
    "text",
    [
        "A323456789",
        "A023456789",
        "1123456789",
        "AA123456789",
        "A12345678",
        "A1234567890",
        "XA123456789",
        "A123456789B",
        "A\uff1123456789",
        "A 123456789",
        "ABCDEFGHIJ",
    ],
)
def test_tw_id_look_alikes(text):
    assert find_tw_national_ids(text) == []


# --- credit cards ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", VALID_CARDS)
def test_luhn_valid_cards(value):
    assert matched(find_credit_cards, f"卡號:{value},謝謝") == [value]


def test_luhn():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert not luhn_valid("\uff14111111111111111")
    assert not luhn_valid("")


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",
        "4111 1111 1111 1112",
        "5555555555554440",
        "1234567812345670",
        "1700000000000",
        "0000000000000000",
        "41111111111111111111",
        "4111 1111-1111 1111",
        "4111-1111-1111-1111-2024",
        "x4111111111111111",
        "411111111111",
        "order 20240912000011",
    ],
)
def test_card_look_alikes(text):
    assert find_credit_cards(text) == []


def test_card_inside_a_longer_group_run_is_still_found():
    assert matched(find_credit_cards, "1234 4111 1111 1111 1111") == ["4111 1111 1111 1111"]
    assert matched(find_credit_cards, "4111 1111 1111 1111 2024") == ["4111 1111 1111 1111"]


# --- phones ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", TW_PHONES + INTERNATIONAL_PHONES)
def test_phones(value):
    assert matched(find_phones, f"我的電話是{value}") == [value]
    assert matched(find_phones, f"call {value}, thanks") == [value]
    assert matched(find_phones, value) == [value]


@pytest.mark.parametrize("text", NOT_PHONES)
def test_phone_look_alikes(text):
    assert find_phones(text) == []


# --- emails ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", EMAILS)
def test_emails_inside_text(value):
    assert matched(find_emails, f"請寄到{value}謝謝") == [value]
    assert matched(find_emails, f"mail <{value}>. Or ({value}), then") == [value, value]


@pytest.mark.parametrize("text", NOT_EMAILS)
def test_email_look_alikes(text):
    assert find_emails(text) == []


def test_numeric_pre_check_never_hides_a_match():
    for value in VALID_TW_IDS + VALID_CARDS + TW_PHONES + INTERNATIONAL_PHONES:
        assert numeric_hint(f"x {value} y"), value
    for text in [
        "In 2024 we sold 3,500 units at 12.5% margin.",
        "第3季 成長 15%",
        "v1.2.3",
        "2025-03-14 10:30",
        "C++ and 1 + 1 = 2",
    ]:
        assert not numeric_hint(text)


# --- Redactor: masking ----------------------------------------------------------------------


def test_masks_string_contents_with_typed_placeholders():
    body = chat(
        "我的電話是0912-345-678",
        "Email a@b.com, call +886 2 2345 6789, ID A123456789, card 4111 1111 1111 1111.",
        "no personal data here, 2024-09-12",
    )
    findings = Redactor().redact_chat(body)
    assert [m["content"] for m in body["messages"]] == [
        "我的電話是[PHONE]",
        "Email [EMAIL], call [PHONE], ID [TW_ID], card [CARD].",
        "no personal data here, 2024-09-12",
    ]
    assert findings.counts == {"phone": 2, "email": 1, "tw_national_id": 1, "credit_card": 1}
    assert findings.kinds == ["credit_card", "email", "phone", "tw_national_id"]
    assert findings.total == 5 and findings


def test_masks_text_parts_and_leaves_other_parts_alone():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD0912345678"}}
    audio = {"type": "input_audio", "input_audio": {"data": "a@b.com", "format": "wav"}}
    body: dict[str, Any] = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "身分證 A123456789,信箱 w@x.com"},
                    image,
                    audio,
                    {"type": "text", "text": 42},
                    "0912345678",
                    {"type": "text"},
                ],
            }
        ]
    }
    untouched = copy.deepcopy(body["messages"][0]["content"][1:])
    findings = Redactor().redact_chat(body)
    content = body["messages"][0]["content"]
    assert content[0]["text"] == "身分證 [TW_ID],信箱 [EMAIL]"
    assert content[1:] == untouched
    assert findings.counts == {"tw_national_id": 1, "email": 1}


def test_non_string_contents_and_other_fields_are_ignored():
    body = {
        "messages": [
            {"role": "assistant", "content": None, "tool_calls": [{"arguments": "a@b.com"}]},
            {"role": "user", "content": 912345678},
            {"role": "user", "content": {"text": "a@b.com"}},
            {"role": "user", "name": "alice", "content": "hi"},
            "a@b.com",
            None,
        ],
        "user": "a@b.com",
    }
    before = copy.deepcopy(body)
    assert Redactor().redact_chat(body) == Findings()
    assert body == before


@pytest.mark.parametrize(
    "body",
    [
        None,
        "a@b.com",
        ["a@b.com"],
        3,
        {},
        {"messages": None},
        {"messages": "a@b.com"},
        {"messages": {"content": "a@b.com"}},
        {"messages": [[{"content": "a@b.com"}]]},
        {"input": {"text": "a@b.com"}},
        {"input": None},
        {"input": 7},
    ],
)
def test_malformed_bodies_never_raise(body):
    redactor = Redactor()
    assert not redactor.redact_chat(body)
    assert not redactor.redact_embeddings(body)


def test_embeddings_input_shapes():
    redactor = Redactor()
    single = {"input": "contact a@b.com"}
    assert redactor.redact_embeddings(single).counts == {"email": 1}
    assert single["input"] == "contact [EMAIL]"
    many = {"input": ["0912345678", "plain", 5, "A123456789 and 0912-345-678"]}
    assert redactor.redact_embeddings(many).counts == {"phone": 2, "tw_national_id": 1}
    assert many["input"] == ["[PHONE]", "plain", 5, "[TW_ID] and [PHONE]"]
    tokens = {"input": [912345678, 4111111111111111]}
    nested = {"input": [[912345678, 1], [2, 3]]}
    assert not redactor.redact_embeddings(tokens) and not redactor.redact_embeddings(nested)
    assert tokens == {"input": [912345678, 4111111111111111]}
    assert nested == {"input": [[912345678, 1], [2, 3]]}


def test_only_configured_kinds_are_masked():
    redactor = Redactor({"kinds": ["email", "tw_national_id"]})
    text, counts = redactor.redact_text("a@b.com 0912345678 A123456789 4111111111111111")
    assert text == "[EMAIL] 0912345678 [TW_ID] 4111111111111111"
    assert counts == {"email": 1, "tw_national_id": 1}
    assert not Redactor({"kinds": []}).active
    assert Redactor({"kinds": [], "patterns": [{"name": "x", "pattern": "x"}]}).active


# --- Redactor: reject mode ------------------------------------------------------------------


def test_reject_mode_leaves_the_body_unchanged_and_reports_kinds_only():
    body = chat(
        "我的電話是0912-345-678, a@b.com",
        [{"type": "text", "text": "card 4111-1111-1111-1111, 0912345678"}],
    )
    before = copy.deepcopy(body)
    findings = Redactor({"mode": "reject"}).redact_chat(body)
    assert body == before
    assert findings.as_dict() == {
        "kinds": ["credit_card", "email", "phone"],
        "counts": {"credit_card": 1, "email": 1, "phone": 2},
    }
    shown = repr(findings) + str(findings.as_dict())
    for value in ("0912", "a@b.com", "4111", "345"):
        assert value not in shown
    embeddings = {"input": ["a@b.com"]}
    assert Redactor({"mode": "reject"}).redact_embeddings(embeddings).counts == {"email": 1}
    assert embeddings == {"input": ["a@b.com"]}


# --- custom patterns, overlaps, placeholders ------------------------------------------------


def test_custom_patterns():
    redactor = Redactor(
        {
            "kinds": ["email"],
            "patterns": [
                {"name": "employee_id", "pattern": r"\bEMP-\d{6}\b"},
                {"name": "project", "pattern": r"(?i)project\s+\w+"},
            ],
        }
    )
    text, counts = redactor.redact_text("員工 EMP-123456 on Project Falcon, mail a@b.com")
    assert text == "員工 [EMPLOYEE_ID] on [PROJECT], mail [EMAIL]"
    assert counts == {"employee_id": 1, "project": 1, "email": 1}


def test_custom_patterns_are_compiled_once(monkeypatch):
    redactor = Redactor({"patterns": [{"name": "code", "pattern": r"X-\d+"}]})

    def no_compile(*args, **kwargs):
        raise AssertionError("compiled per call")

    monkeypatch.setattr(re, "compile", no_compile)
    assert redactor.redact_text("X-1 and X-22")[0] == "[CODE] and [CODE]"


def test_empty_matches_of_a_custom_pattern_are_ignored():
    assert CustomPattern("opt", r"a*").find("bbb") == []


@pytest.mark.parametrize(
    "policy",
    [
        "mask",
        {"mode": "block"},
        {"kinds": "email"},
        {"kinds": ["email", "ssn"]},
        {"patterns": {"name": "x", "pattern": "x"}},
        {"patterns": [{"name": "x"}]},
        {"patterns": [{"name": "x", "pattern": ""}]},
        {"patterns": [{"name": "x", "pattern": "("}]},
        {"patterns": [{"name": "Email", "pattern": "x"}]},
        {"patterns": [{"name": "tw_id", "pattern": "x"}]},
        {"patterns": [{"name": "a b", "pattern": "x"}]},
        {"patterns": [{"name": "x", "pattern": "x"}, {"name": "X", "pattern": "y"}]},
        {"patterns": ["x"]},
    ],
)
def test_bad_policies(policy):
    with pytest.raises(PolicyError):
        Redactor(policy)


def test_placeholders_are_not_detected_again():
    redactor = Redactor({"patterns": [{"name": "codeword", "pattern": r"[A-Z]{4,}"}]})
    once, counts = redactor.redact_text("Send a@b.com the PROJECTX card 4111111111111111")
    assert once == "Send [EMAIL] the [CODEWORD] card [CARD]"
    assert counts == {"email": 1, "codeword": 1, "credit_card": 1}
    assert redactor.redact_text(once) == (once, {})
    assert set(PLACEHOLDERS.values()) == {"[EMAIL]", "[PHONE]", "[TW_ID]", "[CARD]"}


def test_overlapping_matches_merge_and_the_longest_names_them():
    redactor = Redactor(
        {
            "patterns": [
                {"name": "inner", "pattern": "912 345"},
                {"name": "tail", "pattern": "678 ext 12"},
            ]
        }
    )
    text = "call +886 912 345 678 ext 12 now"
    assert redactor.find(text) == [Span(5, 28, "phone")]
    assert redactor.redact_text(text) == ("call [PHONE] now", {"phone": 1})
    longer = Redactor({"patterns": [{"name": "contact", "pattern": r"tel: \S+ \(mobile\)"}]})
    assert longer.redact_text("tel: 0912345678 (mobile)") == ("[CONTACT]", {"contact": 1})
    same_start = Redactor({"patterns": [{"name": "pre", "pattern": "0912"}]})
    assert same_start.redact_text("0912345678") == ("[PHONE]", {"phone": 1})


# --- fast path ------------------------------------------------------------------------------


def test_numeric_detectors_are_skipped_without_a_digit_stretch(monkeypatch):
    calls = []

    def spy(text):
        calls.append(text)
        return []

    for name in ("find_phones", "find_tw_national_ids", "find_credit_cards", "find_emails"):
        monkeypatch.setattr(pii_detectors, name, spy)
    redactor = Redactor()
    body = chat("Summarise Q3: revenue grew 12% to 3,400 units in 2024.", "謝謝!")
    assert not redactor.redact_chat(body)
    assert calls == []
    redactor.redact_chat(chat("order 20240912"))
    assert len(calls) == 3
