"""Phone numbers as providers want them: E.164, checked before any provider is paid to refuse.

Agencies write numbers every way people do (13800138000, 138-0013-8000, +86 138 0013 8000,
008613800138000); Google's libphonenumber (the `phonenumbers` port) knows each country's
numbering plan, so a typo is refused here with a reason instead of by the provider as a vague
"illegal number", and every number is stored and compared in one form.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType
from phonenumbers import ValidationResult as Possible

DEFAULT_REGION = "CN"

_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country calling code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}

_LENGTH_REASONS = {
    Possible.INVALID_COUNTRY_CODE: "unknown country calling code",
    Possible.TOO_SHORT: "too short",
    Possible.IS_POSSIBLE_LOCAL_ONLY: "too short",  # dialable locally at most, not by SMS
    Possible.TOO_LONG: "too long",
    Possible.INVALID_LENGTH: "wrong number of digits",
}


class InvalidPhoneNumber(ValueError):
    """A number no provider could deliver to; `reason` says why in a few words."""

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__(f"{raw!r} is not a usable phone number: {reason}")
        self.raw = raw
        self.reason = reason


def normalize_phone(raw: str, region: str = DEFAULT_REGION, *, require_mobile: bool = True) -> str:
    """Return the number in E.164 (`+8613800138000`), or raise InvalidPhoneNumber.

    A number without a country code is read as a number of `region`. SMS to a landline is
    silently lost by some providers and refused by others, so by default only numbers that
    can be mobile are accepted.
    """
    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException as exc:
        raise InvalidPhoneNumber(raw, _PARSE_REASONS.get(exc.error_type, str(exc))) from exc
    if not phonenumbers.is_valid_number(number):
        possible = phonenumbers.is_possible_number_with_reason(number)
        reason = _LENGTH_REASONS.get(possible)
        if reason is None:
            region_code = phonenumbers.region_code_for_number(number) or region
            reason = f"not a number in use in {region_code}"
        raise InvalidPhoneNumber(raw, reason)
    if require_mobile and phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise InvalidPhoneNumber(raw, "not a mobile number (SMS cannot reach it)")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def national_or_international(e164: str, home_country_code: int = 86) -> str:
    """Write an E.164 number as the Chinese SMS providers' older APIs want it.

    Aliyun takes mainland numbers as 11 bare digits and others as country code + number
    without the `+`; this form is the one every one of its API versions accepts.
    """
    number = phonenumbers.parse(e164, None)
    if number.country_code == home_country_code:
        return phonenumbers.national_significant_number(number)
    return e164.removeprefix("+")
