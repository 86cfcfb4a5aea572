"""Numbers, symbols and abbreviations written out as a voice says them.

``normalize_for_speech("Dr. Lee pays $5.50 at 9:05 am on 3/15/2024.")`` gives
"Doctor Lee pays five dollars and fifty cents at nine oh five AM on March fifteenth, twenty
twenty-four." The phonemizer reads bare digits, but one way whatever the context; a date, a
price, a clock time, a year or a phone number each needs its own reading, and that needs the
context, which is here.

One ``Language`` class holds the words, tables and formats of a language (English, US style:
"one thousand two hundred thirty-four", no "and"); ``_Normalizer`` turns its tables into an
ordered list of regex rules, most specific first (phone numbers and dates before plain
numbers), each replacing what it matched with words. Another language is a subclass with its
own tables and formats, registered in ``LANGUAGES``.

Rules never raise (a failing rule leaves its match as written), never take letters or digits
away without words in their place, and scan the text once each, so a long reply costs about a
millisecond per thousand characters. Integers longer than ``MAX_CARDINAL_DIGITS``, digit runs
that look like identifiers (a leading zero, seven digits or more without separators) and phone
numbers are read digit by digit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import ClassVar

from num2words import num2words

logger = logging.getLogger(__name__)

MAX_CARDINAL_DIGITS = 15
"""Longer integers (past the hundreds of trillions) are read digit by digit."""

_INT = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)"  # "1,234,567" or "1234567"
_NUMBER = rf"(?:{_INT}(?:\.\d+)?|(?<![\w.])\.\d+)"  # and "3.14", ".5"
_CURRENCY_SIGN = r"[$€£¥]"
_NUMBER_END = r"(?!\d|[.,]\d)"  # the number does not go on: not "1,0" or "2024.5"
_DAY = r"(?P<day>\d{1,2})(?i:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4})"
_AM_PM = r"(?P<half>[aApP])\.?\s?[mM](?P<dot>\.)?(?!\w)"

Handler = Callable[[re.Match[str]], "str | None | bool"]  # falsy: leave the match as written


@dataclass(frozen=True)
class Currency:
    one: str
    many: str
    sub_one: str | None = None  # the hundredth: cent, penny
    sub_many: str | None = None


class Language:
    """The words, tables and formats of one language; these are English (US).

    Another language subclasses this, replaces the tables and the formats that differ (a
    date's word order, a clock time), and is registered in ``LANGUAGES``.
    """

    num2words_lang = "en"
    digits = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    words: ClassVar[dict[str, str]] = {
        "minus": "minus", "point": "point", "dot": "dot", "to": "to", "by": "by", "times": "times",
        "and": "and", "plus": "plus", "equals": "equals", "plus_minus": "plus or minus",
        "percent": "percent", "number": "number", "seconds": "seconds",
        "oh": "oh", "o_clock": "o'clock", "am": "AM", "pm": "PM", "the": "the", "of": "of",
    }  # fmt: skip
    months = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")  # fmt: skip
    month_abbreviations: ClassVar[dict[str, int]] = {
        "Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "Jun": 6, "Jul": 7, "Aug": 8, "Sept": 9, "Sep": 9,
        "Oct": 10, "Nov": 11, "Dec": 12,
    }  # fmt: skip
    currencies: ClassVar[dict[str, Currency]] = {
        "$": Currency("dollar", "dollars", "cent", "cents"),
        "€": Currency("euro", "euros", "cent", "cents"),
        "£": Currency("pound", "pounds", "penny", "pence"),
        "¥": Currency("yen", "yen"),
    }
    currency_codes: ClassVar[dict[str, str]] = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}  # "5 USD"
    scales: ClassVar[dict[str, str]] = {
        "thousand": "thousand", "million": "million", "billion": "billion", "trillion": "trillion",
        "k": "thousand", "K": "thousand", "M": "million", "B": "billion", "bn": "billion",
    }  # fmt: skip
    # (singular, plural) after a number; only abbreviations that are not also common words.
    units: ClassVar[dict[str, tuple[str, str]]] = {
        "%": ("percent", "percent"), "°C": ("degree Celsius", "degrees Celsius"),
        "°F": ("degree Fahrenheit", "degrees Fahrenheit"), "℃": ("degree Celsius", "degrees Celsius"),
        "℉": ("degree Fahrenheit", "degrees Fahrenheit"), "°": ("degree", "degrees"),
        "km/h": ("kilometer per hour", "kilometers per hour"), "kph": ("kilometer per hour", "kilometers per hour"),
        "mph": ("mile per hour", "miles per hour"), "km": ("kilometer", "kilometers"),
        "cm": ("centimeter", "centimeters"), "mm": ("millimeter", "millimeters"),
        "mi": ("mile", "miles"), "ft": ("foot", "feet"), "kg": ("kilogram", "kilograms"),
        "mg": ("milligram", "milligrams"), "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"),
        "oz": ("ounce", "ounces"), "ml": ("milliliter", "milliliters"), "mL": ("milliliter", "milliliters"),
        "kcal": ("kilocalorie", "kilocalories"), "ms": ("millisecond", "milliseconds"),
        "sec": ("second", "seconds"), "min": ("minute", "minutes"), "mins": ("minute", "minutes"),
        "hr": ("hour", "hours"), "hrs": ("hour", "hours"), "KB": ("kilobyte", "kilobytes"),
        "kB": ("kilobyte", "kilobytes"), "MB": ("megabyte", "megabytes"), "GB": ("gigabyte", "gigabytes"),
        "TB": ("terabyte", "terabytes"), "Hz": ("hertz", "hertz"), "kHz": ("kilohertz", "kilohertz"),
        "MHz": ("megahertz", "megahertz"), "GHz": ("gigahertz", "gigahertz"),
        "kW": ("kilowatt", "kilowatts"), "kWh": ("kilowatt hour", "kilowatt hours"),
    }  # fmt: skip
    # Matched as written, and capitalized at a sentence start ("E.g."). "St." (street or
    # saint) and "No." (the word) are ambiguous and left alone; "No. 5" is handled below.
    abbreviations: ClassVar[dict[str, str]] = {
        "Dr.": "Doctor", "Mr.": "Mister", "Mrs.": "Missus", "Ms.": "Miz", "Prof.": "Professor",
        "Jr.": "Junior", "Sr.": "Senior", "e.g.": "for example", "i.e.": "that is",
        "etc.": "et cetera", "vs.": "versus", "vs": "versus", "approx.": "approximately",
    }  # fmt: skip
    sentence_final_abbreviations = frozenset({"etc."})  # keep their period at a sentence end
    number_signs = r"No\.\s?|#"  # "No. 5", "#1"
    year_context = ("in", "since", "from", "until", "till", "through", "by", "before", "after",
                    "during", "circa", "around", "year", "between")  # fmt: skip
    range_words = r"to|and|through"  # "from 1999 to 2005", "between 1990 and 2000": kept as written
    fraction_names: ClassVar[dict[int, tuple[str, str]]] = {2: ("half", "halves"), 4: ("quarter", "quarters")}

    # --- formats -------------------------------------------------------------------------

    def cardinal(self, n: int) -> str:
        return _num2words(n, self.num2words_lang, "cardinal").replace(",", "").replace(" and ", " ")

    def ordinal(self, n: int) -> str:
        return _num2words(n, self.num2words_lang, "ordinal").replace(",", "").replace(" and ", " ")

    def year(self, n: int) -> str:
        """1999 -> "nineteen ninety-nine", 2005 -> "two thousand five", 2024 -> "twenty twenty-four"."""
        return _num2words(n, self.num2words_lang, "year").replace(" and ", " ")

    def plural(self, words: str) -> str:
        """The 1990s -> "nineteen nineties", 100s -> "hundreds"."""
        if words.startswith("one ") and " " not in words[4:]:
            words = words[4:]
        return words[:-1] + "ies" if words.endswith("y") else words + "s"

    def date(self, year: int | None, month: int, day: int | None, day_first: bool = False) -> str:
        name = self.months[month - 1]
        if day is None:
            return name if year is None else f"{name} {self.year(year)}"
        if day_first:
            text = f"{self.words['the']} {self.ordinal(day)} {self.words['of']} {name}"
        else:
            text = f"{name} {self.ordinal(day)}"
        return text if year is None else f"{text}, {self.year(year)}"

    def time(self, hour: int, minute: int, second: int, half: str | None) -> str:
        """10:30 -> "ten thirty", 9:05 am -> "nine oh five AM", 12:00 -> "twelve o'clock"."""
        w = self.words
        if minute == 0:
            minutes = "" if half else w["o_clock"]
        elif minute < 10:
            minutes = f"{w['oh']} {self.digits[minute]}"
        else:
            minutes = self.cardinal(minute)
        spoken = " ".join(part for part in (self.cardinal(hour), minutes) if part)
        if second:
            spoken += f" {w['and']} {self.cardinal(second)} {w['seconds']}"
        if half:
            spoken += " " + w["am" if half.lower() == "a" else "pm"]
        return spoken


def _num2words(n: int, lang: str, to: str) -> str:
    if -1000 < n < 10_000:
        return _num2words_cached(n, lang, to)
    return str(num2words(n, lang=lang, to=to))


@lru_cache(maxsize=4096)
def _num2words_cached(n: int, lang: str, to: str) -> str:
    return str(num2words(n, lang=lang, to=to))


LANGUAGES: dict[str, type[Language]] = {"en": Language}
"""Language code (the part before "_" or "-": "en_US" -> "en") to its tables and formats."""


def normalize_for_speech(text: str, lang: str = "en") -> str:
    """``text`` with numbers, symbols and abbreviations written out as ``lang`` speaks them.

    An unsupported language gets ``text`` back unchanged; so does any text if something
    unexpected fails, which is logged, never raised.
    """
    normalizer = _normalizer(re.split(r"[_-]", lang.strip().lower(), maxsplit=1)[0])
    if normalizer is None or not text:
        return text
    try:
        spoken = normalizer.normalize(text)
    except Exception:  # a voice that reads digits beats a reply that is never spoken
        logger.exception("could not normalize text for speech; left as written")
        return text
    has_words = any(ch.isalnum() for ch in text)
    return spoken if spoken.strip() or not has_words else text


@cache
def _normalizer(code: str) -> _Normalizer | None:
    language = LANGUAGES.get(code)
    if language is None:
        logger.warning("no number reading for language %r: digits are left to the phonemizer", code)
        return None
    return _Normalizer(language())


def _alternation(names: Iterable[str]) -> str:
    """A regex alternation of ``names``, longest first so that "Sept" wins over "Sep"."""
    return "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))


class _Normalizer:
    def __init__(self, language: Language) -> None:
        self.lang = lang = language
        self.w = lang.words
        self._months = {name: i + 1 for i, name in enumerate(lang.months)} | lang.month_abbreviations
        month = rf"(?P<month>{_alternation(self._months)})\b\.?"
        abbreviations = list(lang.abbreviations) + [
            key[0].upper() + key[1:] for key in lang.abbreviations if key[0].islower()
        ]
        units = "|".join(
            re.escape(unit) + (r"(?![\w/])" if unit[-1].isalpha() else "")  # "km" but not "kmh"
            for unit in sorted({*lang.units, *lang.currency_codes, *lang.currencies}, key=len, reverse=True)
        )
        scales = (
            rf"(?:\s(?P<scale_word>{_alternation(s for s in lang.scales if len(s) > 2)})"  # "$2.5 million"
            rf"|(?P<scale_letter>{_alternation(s for s in lang.scales if len(s) <= 2)}))(?!\w)"  # "$5M"
        )
        w, rule = self.w, re.compile
        self.rules: list[tuple[re.Pattern[str], Handler]] = [
            (rule(rf"(?<![\w.])(?:{_alternation(abbreviations)})(?!\w)"), self._abbreviation),
            (rule(rf"(?<!\w)(?:{lang.number_signs})(?=\d)"), lambda m: w["number"] + " "),
            (rule(r"°\s(?=[CF]\b)"), lambda m: "°"),
            # phone numbers: "+1 (555) 123-4567", "555-123-4567", "555-1234"
            (rule(r"(?<![\w+])\+\d{1,3}(?:[ .-]\(?\d{1,4}\)?){2,6}(?!\w)"), self._phone),
            (rule(rf"(?<![\w+.-])(?:1[ .-])?(?:\(\d{{3}}\)\s?|\d{{3}}[.-])\d{{3}}[.-]\d{{4}}{_NUMBER_END}"), self._phone),
            (rule(rf"(?<![\w.-])\d{{3}}-\d{{4}}(?!-){_NUMBER_END}"), self._local_phone),
            # dates: 2024-03-15, 3/15/2024, March 15(, 2024), 15 March(, 2024), March 2024
            (rule(r"(?<![\w.-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d-])"), self._iso_date),
            (rule(r"(?<![\w/.])(\d{1,2})/(\d{1,2})/(\d{4})(?![\d/])"), self._us_date),
            (rule(rf"\b{month}\s{_DAY}(?:,?\s{_YEAR})?{_NUMBER_END}"), self._month_day),
            (rule(rf"(?<![\w.,]){_DAY}\s(?:of\s)?{month}(?:,?\s{_YEAR}{_NUMBER_END})?"), self._day_month),
            (rule(rf"\b{month}\s{_YEAR}{_NUMBER_END}"), self._month_day),
            # clock times: 10:30, 9:05 am, 23:48, 1:05:30, 9pm
            (rule(rf"(?<![\d:.])(?P<h>\d{{1,2}}):(?P<m>\d\d)(?::(?P<s>\d\d))?(?![\d:])(?:\s?{_AM_PM})?"), self._time),
            (rule(rf"(?<![\d:.,])(?P<h>\d{{1,2}})\s?{_AM_PM}"), self._time),
            # years: "in 1999", "from 1999 to 2005", "1999-2005", "2023-24", the 1990s
            (rule(
                rf"\b(?P<ctx>(?i:{_alternation(lang.year_context)}))\s(?P<a>\d{{4}})"
                rf"(?:\s?(?:[-–]|\s(?P<sep>{lang.range_words})\s)\s?(?P<b>\d{{4}}))?{_NUMBER_END}(?!\s?%)"
            ), self._year),
            (rule(rf"(?<![\w.,-])(?P<a>1[5-9]\d\d|20\d\d)\s?[-–]\s?(?P<b>\d{{4}}|\d\d){_NUMBER_END}(?!\s?%)"), self._year),
            (rule(r"(?<![\w.])['’]?(\d{1,3}0)s(?!\w)"), self._decade),
            # 1st, 22nd, 1/2, 3.11.7, 24/7, 1920x1080, 2x
            (rule(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?i:st|nd|rd|th)(?!\w)"), self._ordinal),
            (rule(rf"(?<![\w./])(\d)/(\d{{1,2}})(?![\w/]){_NUMBER_END}"), self._fraction),
            (rule(r"(?<![\w.])\d+(?:\.\d+){2,}(?!\w|\.\d)"), self._dotted),
            (rule(r"(?<=\d)/(?=\d)"), lambda m: " "),  # "24/7", "50/50": not "slash"
            (rule(r"(?<![\w.])(\d+(?:\.\d+)?)\s?[x×]\s?(?=\d)"), lambda m: m[1] != "0" and f"{m[1]} {w['by']} "),
            (rule(r"(?<![\w.])(\d+(?:\.\d+)?)x(?!\w)"), lambda m: f"{m[1]} {w['times']}"),
            # ranges: 5-10 -> "5 to 10" (each read below), $5-10 -> "5 to $10"
            (rule(
                rf"(?<![\w.,])(?P<cur>{_CURRENCY_SIGN}?)(?P<a>{_NUMBER})(?P<unit>%|°[CF]?)?(?:-|\s?–\s?)"
                rf"(?=(?P<cur2>{_CURRENCY_SIGN})?(?P<b>{_NUMBER}))"
            ), self._range),
            # everything else with digits: -5, 3.14, 1,000, 45%, $2.5 million, 20°C, 5 km, MP3
            (rule(
                rf"(?P<sign>(?<![\w.])[-−])?(?P<cur>{_CURRENCY_SIGN})?(?P<num>{_NUMBER})(?:{scales})?(?:\s?(?P<unit>{units}))?"
            ), self._quantity),
            # symbols left over: "R&D", "C++", "x = 5"
            (rule(r"&+"), lambda m: " ".join([w["and"]] * len(m[0]))),
            (rule(r"\++"), lambda m: " ".join([w["plus"]] * len(m[0]))),
            (rule(r"=+"), lambda m: w["equals"]),
            (rule(r"±"), lambda m: w["plus_minus"]),
            (rule(r"−"), lambda m: w["minus"]),
            (rule(r"%"), lambda m: w["percent"]),
        ]  # fmt: skip

    def normalize(self, text: str) -> str:
        for pattern, handler in self.rules:
            text = pattern.sub(lambda m, handler=handler: self._replace(m, handler), text)  # type: ignore[misc]
        return re.sub(r"(?<=\S) {2,}(?=\S)", " ", text)

    @staticmethod
    def _replace(match: re.Match[str], handler: Handler) -> str:
        try:
            words = handler(match)
        except Exception:  # e.g. a number too large for num2words: keep it as written
            logger.debug("no spoken form for %r", match[0][:80], exc_info=True)
            return match[0]
        if not words:
            return match[0]
        text, start, end = match.string, match.start(), match.end()
        if start > 0 and text[start - 1].isalnum() and words[0].isalnum():
            words = " " + words  # "MP3" -> "MP three"
        if end < len(text) and text[end].isalnum() and words[-1].isalnum():
            words += " "
        return words

    # --- numbers ---------------------------------------------------------------------------

    def spell(self, digits: str) -> str:
        return " ".join(self.lang.digits[int(d)] for d in digits if d.isdecimal())

    def integer(self, digits: str, grouped: bool = False) -> str:
        """Cardinal words, or digit by digit for identifiers: "007", "5551234", 10**40."""
        looks_like_code = not grouped and len(digits) >= 7 and not digits.endswith("000")
        if len(digits) > MAX_CARDINAL_DIGITS or (len(digits) > 1 and digits[0] == "0") or looks_like_code:
            return self.spell(digits)
        return self.lang.cardinal(int(digits))

    def number(self, text: str) -> str:
        """ "1,234.5" -> "one thousand two hundred thirty-four point five"."""
        whole, dot, fraction = text.partition(".")
        words = self.integer(whole.replace(",", ""), grouped="," in whole) if whole else ""
        if dot:
            words = f"{words} {self.w['point']} {self.spell(fraction)}".strip()
        return words

    def _is_one(self, text: str) -> bool:
        return text.replace(",", "").lstrip("0") == "1"

    def _quantity(self, m: re.Match[str]) -> str:
        num, unit, cur = m["num"], m["unit"], m["cur"]
        if unit in self.lang.currency_codes or unit in self.lang.currencies:
            cur, unit = cur or self.lang.currency_codes.get(unit, unit), None
        scale = self.lang.scales.get(m["scale_word"] or "") or (self.lang.scales.get(m["scale_letter"]) if cur else None)
        if cur:
            words = self.money(num, self.lang.currencies[cur], scale)
        else:
            words = self.number(num)
            if m["scale_word"] or m["scale_letter"]:
                words += " " + (scale or m["scale_letter"])  # "7B" -> "seven B"
        if unit:
            one, many = self.lang.units[unit]
            words += " " + (one if self._is_one(num) and not scale else many)
        return f"{self.w['minus']} {words}" if m["sign"] else words

    def money(self, num: str, currency: Currency, scale: str | None) -> str:
        """ "$5.50" -> "five dollars and fifty cents", "$2.5 million" -> "two point five million dollars"."""
        whole, _, cents = num.replace(",", "").partition(".")
        if scale:
            return f"{self.number(num)} {scale} {currency.many}"
        if cents and len(cents) <= 2 and currency.sub_many:
            hundredths = int(cents.ljust(2, "0"))
            parts = []
            if whole.strip("0") or not hundredths:
                parts.append(f"{self.number(whole or '0')} {currency.one if self._is_one(whole) else currency.many}")
            if hundredths:
                parts.append(f"{self.lang.cardinal(hundredths)} {currency.sub_one if hundredths == 1 else currency.sub_many}")
            return f" {self.w['and']} ".join(parts)
        return f"{self.number(num)} {currency.one if self._is_one(num) else currency.many}"

    def _range(self, m: re.Match[str]) -> str | None:
        a, b = m["a"].replace(",", ""), m["b"].replace(",", "")
        if len(a) > 20 or len(b) > 20 or float(a) >= float(b):
            return None  # "3-2" is a score, "737-800" stays a model number only when falling
        cur, unit, to = m["cur"], m["unit"] or "", self.w["to"]
        if cur and not m["cur2"] and "." not in m["a"]:
            return f"{m['a']}{unit} {to} {cur}"  # "$5-10" -> "five to ten dollars"
        return f"{cur}{m['a']}{unit} {to} {cur if not m['cur2'] else ''}"

    def _ordinal(self, m: re.Match[str]) -> str | None:
        digits = m[1].replace(",", "")
        return self.lang.ordinal(int(digits)) if len(digits) <= MAX_CARDINAL_DIGITS else None

    def _fraction(self, m: re.Match[str]) -> str | None:
        top, bottom = int(m[1]), int(m[2])
        if not 0 < top < bottom <= 10:
            return None
        one, many = self.lang.fraction_names.get(bottom) or (self.lang.ordinal(bottom), self.lang.ordinal(bottom) + "s")
        return f"{self.lang.cardinal(top)} {one if top == 1 else many}"

    def _dotted(self, m: re.Match[str]) -> str:
        """Versions and addresses: "3.11.7" -> "three dot eleven dot seven"."""
        return f" {self.w['dot']} ".join(self.integer(part) if len(part) < 4 else self.spell(part) for part in m[0].split("."))

    def _phone(self, m: re.Match[str]) -> str | None:
        groups = re.findall(r"\d+", m[0])
        if sum(map(len, groups)) < 7:
            return None
        spoken = ", ".join(self.spell(group) for group in groups)
        return f"{self.w['plus']} {spoken}" if m[0].startswith("+") else spoken

    def _local_phone(self, m: re.Match[str]) -> str | None:
        return None if m[0].endswith("00") or m[0][2] == "0" else self._phone(m)  # "150-1200" is a range

    # --- dates, times, years ---------------------------------------------------------------

    def _iso_date(self, m: re.Match[str]) -> str | None:
        return self._valid_date(int(m[1]), int(m[2]), int(m[3]))

    def _us_date(self, m: re.Match[str]) -> str | None:
        first, second, year = int(m[1]), int(m[2]), int(m[3])
        if first > 12:  # 15/3/2024 can only be day first
            first, second = second, first
        return self._valid_date(year, first, second)

    def _valid_date(self, year: int, month: int, day: int) -> str | None:
        return self.lang.date(year, month, day) if 1 <= month <= 12 and 1 <= day <= 31 else None

    def _month_day(self, m: re.Match[str]) -> str | None:
        day = int(m["day"]) if "day" in m.groupdict() and m["day"] else None
        if day is not None and not 1 <= day <= 31:
            return None
        year = int(m["year"]) if m["year"] else None
        return self.lang.date(year, self._months[m["month"]], day)

    def _day_month(self, m: re.Match[str]) -> str | None:
        day = int(m["day"])
        if not 1 <= day <= 31:
            return None
        year = int(m["year"]) if m["year"] else None
        words = self.lang.date(year, self._months[m["month"]], day, day_first=True)
        the = self.w["the"] + " "
        if re.search(rf"(?<!\w){the}$", m.string[max(0, m.start() - 8) : m.start()], re.IGNORECASE) and words.startswith(the):
            words = words[len(the) :]  # "on the 4th of July": no second "the"
        return words

    def _time(self, m: re.Match[str]) -> str | None:
        parts = m.groupdict()
        hour, minute, second = (int(parts.get(key) or 0) for key in ("h", "m", "s"))
        half = parts["half"]
        if minute > 59 or second > 59 or hour > (12 if half else 24) or (half and hour == 0):
            return None
        return self.lang.time(hour, minute, second, half) + self._kept_stop(m, "dot")

    def _year(self, m: re.Match[str]) -> str | None:
        parts = m.groupdict()
        a, b = int(m["a"]), m["b"]
        prefix = f"{parts['ctx']} " if parts.get("ctx") else ""
        if not 1000 <= a <= 2999:
            return None
        if b is None:
            return prefix + self.lang.year(a)
        to = parts.get("sep") or self.w["to"]
        if len(b) == 2:  # "2023-24"
            return f"{prefix}{self.lang.year(a)} {to} {self.lang.cardinal(int(b))}" if int(b) > a % 100 else None
        return f"{prefix}{self.lang.year(a)} {to} {self.lang.year(int(b))}" if a < int(b) <= 2999 else None

    def _decade(self, m: re.Match[str]) -> str:
        n = int(m[1])
        return self.lang.plural(self.lang.year(n) if 1000 <= n <= 2999 else self.lang.cardinal(n))

    # --- words -----------------------------------------------------------------------------

    def _abbreviation(self, m: re.Match[str]) -> str:
        written = m[0]
        words = self.lang.abbreviations.get(written)
        if words is None:  # "E.g." at a sentence start
            written = written[0].lower() + written[1:]
            words = self.lang.abbreviations[written]
            words = words[0].upper() + words[1:]
        if written in self.lang.sentence_final_abbreviations and _at_sentence_end(m):
            words += "."
        return words

    def _kept_stop(self, m: re.Match[str], group: str) -> str:
        return "." if m[group] and _at_sentence_end(m) else ""


def _at_sentence_end(m: re.Match[str]) -> bool:
    """The period that ends ``m`` also ends the sentence: "at 9 a.m. Then", "and so on, etc." """
    rest = m.string[m.end() : m.end() + 3]
    return not rest.strip() or (rest[:1].isspace() and rest.lstrip()[:1].isupper())
