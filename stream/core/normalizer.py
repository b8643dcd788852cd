"""Speech-text normalization: what the engine is given to say for one phrase.

Clients get the phrase text untouched; the engine gets this. Markdown, code, tags, emoji and other
symbols are removed (a voice reads them as noise or garbles them), LLM typography becomes plain
punctuation, and, for engines without their own text front end (Chatterbox), numbers, currency,
percentages, ordinals, times and units are spelled out with num2words. The result is idempotent
and "" when nothing speakable is left (the server then sends no audio for the phrase).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from num2words import num2words

__all__ = ["NormalizerOptions", "normalize"]


@dataclass(frozen=True)
class NormalizerOptions:
    spell_out_numbers: bool = False   # per engine (`Engine.policy`): numbers, currency, percentages, ordinals, times, units


# -- markup ------------------------------------------------------------------------------------------
_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.S | re.I)
_TAG = re.compile(r"</?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>")
_FENCE = re.compile(r"^[ \t]*```.*?(?:^[ \t]*```[^\n]*$|\Z)", re.S | re.M)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_HRULE = re.compile(r"^\s*([-*_])(?:\s*\1){2,}\s*$")
_LINE_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|>+\s?|[-*+•]\s+)+")
_IMAGE_OR_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\n]*\)")
_INLINE_CODE = re.compile(r"`+([^`\n]*)`+")
_STRIKE = re.compile(r"~~.*?~~", re.S)
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", re.S)
_EMPH = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])|(?<![\w_])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![\w_])")
# What emphasis left behind (a phrase can end inside **bold**); "snake_case" stays, and "2 * 3" was
# made "2 times 3" before.
_TIMES = re.compile(r"(?<=\d)\s*[*×]\s*(?=\d)")
_STRAY_MARKS = re.compile(r"\*+|_{2,}|~~|`|(?<![^\W_])_|_(?![^\W_])")
_SNAKE = re.compile(r"(?<=[A-Za-z0-9])_(?=[A-Za-z0-9])")

# -- links, symbols, typography ------------------------------------------------------------------------
_URL = re.compile(r"(?:https?://|www\.)[^\s<>()\"']*[^\s<>()\"'.,;:!?]", re.I)
_EMAIL = re.compile(r"\b\w[\w.+-]*@[\w-]+(?:\.[\w-]+)+\b")
_DEGREES = re.compile(r"\s?°\s?([CF])\b|\s?°")
_TYPOGRAPHY = str.maketrans({
    "“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'", "’": "'", "‚": "'",
    "…": "...", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2007": " ", "\t": " ",
    "→": " to ", "&": " and ", "|": ",",
})
_DASH_PAUSE = re.compile(r"(?:\s*—[—–-]*|\s+[-–]{1,2}(?=\s))+\s*")
_ASCII_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_DROP_CATEGORIES = frozenset({"So", "Sk", "Cs", "Co", "Cn", "Cf", "Cc"})
_KEEP_SYMBOLS = frozenset("$€£¥%+=<>/^`")
_ABBREVIATIONS = [
    (re.compile(r"\bDr\.(?=\s+[A-Z])"), "Doctor"),
    (re.compile(r"\bMr\.(?=\s)"), "Mister"),
    (re.compile(r"\bMrs\.(?=\s)"), "Missus"),
    (re.compile(r"\bMs\.(?=\s)"), "Miz"),
    (re.compile(r"\be\.g\.(?:,)?", re.I), "for example,"),
    (re.compile(r"\bi\.e\.(?:,)?", re.I), "that is,"),
    (re.compile(r"\bvs\.?(?=\s)"), "versus"),
    (re.compile(r"\betc\.(?=\s*[,;:)]|\s+[a-z])"), "et cetera"),
    (re.compile(r"\betc\.(?=\s*$|\s+[A-Z])"), "et cetera."),
    (re.compile(r"\bapprox\.(?=\s)"), "approximately"),
    (re.compile(r"\bNo\.(?=\s?\d)"), "number"),
]
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_PUNCT_PILEUP = re.compile(r"[,;:](?:\s*[,;:])*\s*(?=[.!?])|([,;:])(?:\s*[,;:])+")
_LEADING_PUNCT = re.compile(r"^(?:[\s,;:>]|#+\s|\.{2,}|[-–+•]+\s)+")  # also line markup bared by the above
_SPACES = re.compile(r"\s+")


def normalize(text: str, options: NormalizerOptions = NormalizerOptions()) -> str:
    """The words the engine should say for one phrase; "" when nothing speakable is left."""
    text = _THINK.sub(" ", text)
    text = _DEGREES.sub(lambda m: " degrees" + (_TEMPERATURE[m.group(1)] if m.group(1) else ""), text)
    text = _drop_symbols(text)
    text = _FENCE.sub("\n", text)
    text = _TAG.sub(" ", text)
    text = _lines(text)
    text = text.translate(_TYPOGRAPHY)
    text = _IMAGE_OR_LINK.sub(r"\1", text)
    text = _URL.sub(_say_url, text)
    text = _EMAIL.sub(_say_email, text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _STRIKE.sub(" ", text)
    text = _TIMES.sub(" times ", text)
    text = _STRONG.sub(r"\2", text)
    text = _EMPH.sub(lambda m: m.group(1) or m.group(2), text)
    text = _STRAY_MARKS.sub("", text)
    text = _SNAKE.sub(" ", text)
    text = _DASH_PAUSE.sub(", ", text)
    if options.spell_out_numbers:
        text = spell_numbers(text)
    for pattern, words in _ABBREVIATIONS:
        text = pattern.sub(words, text)
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _PUNCT_PILEUP.sub(lambda m: m.group(1) or "", text)
    text = _LEADING_PUNCT.sub("", text).strip()
    return text if any(ch.isalnum() for ch in text) else ""


_TEMPERATURE = {"C": " Celsius", "F": " Fahrenheit"}


def _lines(text: str) -> str:
    """Drop line-level markdown; a line break without punctuation becomes a sentence end."""
    out: list[str] = []
    for raw in text.split("\n"):
        if _TABLE_RULE.match(raw) or _HRULE.match(raw):
            continue
        line = _LINE_MARKUP.sub("", raw).strip()
        if line.startswith("|") or line.endswith("|"):
            line = ", ".join(cell.strip() for cell in line.strip("|").split("|") if cell.strip())
        if not line:
            continue
        if out and out[-1][-1] not in ".!?,;:":
            out[-1] += "."
        out.append(line)
    return " ".join(out)


def _say_url(match: re.Match[str]) -> str:
    """A URL is said by its host: "docs dot python dot org"; the path is noise when spoken."""
    host = re.split(r"[/?#@]", re.sub(r"^(?:https?://)?(?:www\.)?", "", match.group(0), flags=re.I))[0]
    return _say_dotted(host)


def _say_email(match: re.Match[str]) -> str:
    return _say_dotted(match.group(0).replace("@", " at "))


def _say_dotted(address: str) -> str:
    return " " + address.replace(".", " dot ").replace("_", " ") + " "


def _drop_symbols(text: str) -> str:
    """Remove emoji, pictographs, variation selectors, joiners and other symbols no voice can say."""
    if text.isascii():
        return _ASCII_CONTROL.sub(" ", text)
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in _DROP_CATEGORIES and ch not in _KEEP_SYMBOLS and ch != "\n":
            kept.append(" " if cat in ("So", "Cc") else "")
        elif cat in ("Mn", "Me") and (0xFE00 <= ord(ch) <= 0xFE0F or ch == "\u20e3"):
            continue
        else:
            kept.append(ch)
    return "".join(kept)


# -- numbers -------------------------------------------------------------------------------------------
_CURRENCY = {"$": ("dollar", "cent"), "€": ("euro", "cent"), "£": ("pound", "penny"), "¥": ("yen", "")}
_SCALES = {"k": "thousand", "m": "million", "b": "billion", "bn": "billion", "t": "trillion",
           "thousand": "thousand", "million": "million", "billion": "billion", "trillion": "trillion"}
_UNITS = {
    "km": "kilometer", "m": "meter", "cm": "centimeter", "mm": "millimeter", "mi": "mile",
    "ft": "foot", "in": "inch", "kg": "kilogram", "g": "gram", "mg": "milligram", "lb": "pound",
    "lbs": "pound", "oz": "ounce", "l": "liter", "ml": "milliliter", "mph": "mile per hour",
    "km/h": "kilometer per hour", "kph": "kilometer per hour", "s": "second", "sec": "second",
    "ms": "millisecond", "min": "minute", "h": "hour", "hr": "hour", "hrs": "hour",
    "kb": "kilobyte", "mb": "megabyte", "gb": "gigabyte", "tb": "terabyte", "ghz": "gigahertz",
    "mhz": "megahertz", "hz": "hertz", "kw": "kilowatt", "kwh": "kilowatt hour", "w": "watt", "v": "volt",
}
_AMBIGUOUS_UNITS = frozenset("in m s h g l w v min hr ft".split())
_IRREGULAR_PLURALS = {"foot": "feet", "inch": "inches", "penny": "pence", "mile per hour": "miles per hour",
                      "kilometer per hour": "kilometers per hour", "kilowatt hour": "kilowatt hours", "yen": "yen"}
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_NUMBER_TOKENS = re.compile(
    r"(?P<numbered>\bNo\.(?=\s?\d))"
    r"|(?P<phone>\b\d{3}[-.]\d{3}[-.]\d{4}\b)"
    r"|(?P<time>\b(?P<h>[01]?\d|2[0-3]):(?P<mi>[0-5]\d)(?::[0-5]\d)?(?:\s?(?P<ampm>[ap])\.?m\.?(?=\W|$))?)"
    r"|(?P<ampm_only>\b(?P<h2>1[0-2]|0?[1-9])\s?(?P<ap2>[ap])\.?m\.?(?=\W|$))"
    r"|(?P<version>\bv(?P<ver>\d+(?:\.\d+)+)\b)"
    r"|(?P<money>(?P<neg>-)?(?P<cur>[$€£¥])\s?(?P<amt>" + _NUM + r")(?:\s?(?P<scale>thousand|million|billion|trillion|bn|[kKmMbBtT])\b)?)"
    r"|(?P<range>\b(?P<r1>" + _NUM + r")\s?[-–]\s?(?P<r2>" + _NUM + r")(?P<rpct>%)?)"
    r"|(?P<pct>(?P<pneg>-)?\b(?P<pn>" + _NUM + r")\s?%)"
    r"|(?P<ord>\b(?P<on>\d+)(?:st|nd|rd|th)\b)"
    r"|(?P<frac>\b(?P<fn>\d{1,2})/(?P<fd>\d{1,2})\b(?!/))"
    r"|(?P<unit>(?P<uneg>-)?\b(?P<un>" + _NUM + r")\s?(?P<uu>km/h|[A-Za-z]{1,3})\b)"
    r"|(?P<num>(?P<nneg>(?<![\w.])-)?\b(?P<nn>" + _NUM + r")\b)"
)


def spell_numbers(text: str) -> str:
    """Spell out numbers and the quantities around them, for engines that cannot read digits."""
    return _NUMBER_TOKENS.sub(_spell_match, text)


def _spell_match(m: re.Match[str]) -> str:
    g = m.groupdict()
    if g["numbered"]:
        return "number"
    if g["phone"]:
        return " ".join(_DIGITS[d] if d.isdigit() else "," for d in g["phone"])
    if g["time"]:
        return _say_time(int(g["h"]), int(g["mi"]), g["ampm"]) + _kept_stop(m)
    if g["ampm_only"]:
        return f"{_cardinal(g['h2'])} {g['ap2'].lower()} m" + _kept_stop(m)
    if g["version"]:
        return "version " + " point ".join(_cardinal(part) for part in g["ver"].split("."))
    if g["money"]:
        return _say_money(g["cur"], g["amt"], g["scale"], bool(g["neg"]))
    if g["range"]:
        return f"{_cardinal(g['r1'])} to {_cardinal(g['r2'])}" + (" percent" if g["rpct"] else "")
    if g["pct"]:
        return ("minus " if g["pneg"] else "") + _cardinal(g["pn"]) + " percent"
    if g["ord"]:
        return num2words(int(g["on"]), to="ordinal")
    if g["frac"]:
        return _say_fraction(int(g["fn"]), int(g["fd"]))
    if g["unit"]:
        sign = "minus " if g["uneg"] else ""
        unit = _unit(g["uu"], spaced=m.group(0)[len(g["uneg"] or "") + len(g["un"]):][:1] == " ")
        # An unknown suffix is read as letters after the number: "4B" -> "four B", "10K" -> "ten K".
        return sign + _cardinal(g["un"]) + " " + (_plural(unit, g["un"]) if unit else g["uu"])
    return ("minus " if g["nneg"] else "") + _cardinal(g["nn"], year_ok="," not in g["nn"])


def _kept_stop(m: re.Match[str]) -> str:
    """"3 p.m." swallowed a period; give it back when it also ended the sentence."""
    rest = m.string[m.end():]
    ends = not rest.strip() or re.match(r"\s+[A-Z]", rest) is not None
    return "." if m.group(0).endswith(".") and ends else ""


_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_DIGITS = dict(zip("0123456789", _DIGITS, strict=True))  # type: ignore[assignment]


def _cardinal(number: str, year_ok: bool = False) -> str:
    """num2words without its commas (they would become pauses); `year_ok`: 1999 -> nineteen ninety-nine."""
    plain = number.replace(",", "")
    try:
        value = Decimal(plain)
    except InvalidOperation:
        return number
    if value == value.to_integral_value() and "." not in plain:
        n = int(value)
        words = num2words(n, to="year") if year_ok and 1100 <= n <= 2099 and len(plain) == 4 else num2words(n)
    elif len(plain.split(".")[1]) > 2 or plain.startswith("0."):
        whole, frac = plain.split(".")
        words = num2words(int(whole)) + " point " + " ".join(_DIGITS[d] for d in frac)
    else:
        words = num2words(value)
    return words.replace(",", "").replace("-", " ")


def _unit(symbol: str, spaced: bool) -> str | None:
    """The unit's name, unless the letters are more likely a word ("5 in a row") or a scale ("5M")."""
    if symbol == "M" or (spaced and symbol.lower() in _AMBIGUOUS_UNITS):
        return None
    return _UNITS.get(symbol.lower())


def _plural(unit: str, number: str) -> str:
    if number.replace(",", "") in ("1", "1.0"):
        return unit
    if unit in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[unit]
    head, _, rest = unit.partition(" ")
    return head + "s" + (" " + rest if rest else "")


def _say_time(hour: int, minute: int, ampm: str | None) -> str:
    words = _cardinal(str(hour))
    if minute == 0:
        words += " o'clock" if not ampm else ""
    elif minute < 10:
        words += " oh " + _cardinal(str(minute))
    else:
        words += " " + _cardinal(str(minute))
    return words + (f" {ampm.lower()} m" if ampm else "")


def _say_money(symbol: str, amount: str, scale: str | None, negative: bool) -> str:
    unit, sub = _CURRENCY[symbol]
    plain = amount.replace(",", "")
    lead = "minus " if negative else ""
    if scale:
        return f"{lead}{_cardinal(plain)} {_SCALES[scale.lower()]} {_plural(unit, '2')}"
    whole, _, cents = plain.partition(".")
    words = f"{lead}{_cardinal(whole)} {_plural(unit, whole)}"
    if cents and sub and int(cents.ljust(2, "0")[:2]):
        c = str(int(cents.ljust(2, "0")[:2]))
        words += f" and {_cardinal(c)} {_plural(sub, c) if sub != 'penny' else ('penny' if c == '1' else 'pence')}"
    return words


def _say_fraction(numerator: int, denominator: int) -> str:
    if denominator == 0:
        return f"{_cardinal(str(numerator))} over zero"
    if denominator == 2:
        name = "half" if numerator == 1 else "halves"
    elif denominator == 4:
        name = "quarter" if numerator == 1 else "quarters"
    else:
        name = num2words(denominator, to="ordinal").replace("-", " ") + ("" if numerator == 1 else "s")
    return f"{_cardinal(str(numerator))} {name}"
