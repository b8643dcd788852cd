"""normalize(): one case table per rule, then idempotence and robustness on arbitrary text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core.normalizer import NormalizerOptions, normalize
from stream.engines.chatterbox.policy import POLICY as CHATTERBOX_POLICY
from stream.engines.piper.policy import POLICY as PIPER_POLICY

PLAIN = NormalizerOptions()
SPELL = NormalizerOptions(spell_out_numbers=True)


def test_engine_options() -> None:
    assert PIPER_POLICY.normalizer == PLAIN          # espeak-ng reads digits itself
    assert CHATTERBOX_POLICY.normalizer == SPELL     # Chatterbox has no number front end


MARKDOWN = [
    ("**Short answer:** yes.", "Short answer: yes."),
    ("It is *really* __that__ simple.", "It is really that simple."),
    ("# Getting started\n\nInstall it first.", "Getting started. Install it first."),
    ("- milk\n- eggs\n* bread\n+ jam", "milk. eggs. bread. jam"),
    ("> Simplicity is prerequisite for reliability.", "Simplicity is prerequisite for reliability."),
    ("Read [the docs](https://example.com/docs) first.", "Read the docs first."),
    ("![A red fox](fox.png) jumps.", "A red fox jumps."),
    ("Call `voicewire.say()` once.", "Call voicewire.say() once."),
    ("Run this:\n```bash\npip install voicewire\n```\nThat is all.", "Run this: That is all."),
    ("```python\nx = 1\n", ""),
    ("| Plan | Price |\n|------|-------|\n| Basic | cheap |", "Plan, Price. Basic, cheap"),
    ("The ~~old~~ new endpoint.", "The new endpoint."),
    ("---\n\nSummary", "Summary"),
    ("Note that 2 * 3 = 6 and 4×5 = 20.", "Note that 2 times 3 = 6 and 4 times 5 = 20."),
    ("Use snake_case names.", "Use snake case names."),
    ("**This is", "This is"),
    ("important.**", "important."),
    ("<think>The user wants a joke.</think>Why did the chicken cross?", "Why did the chicken cross?"),
    ("Hello <b>world</b>, and 3 < 5.", "Hello world, and 3 < 5."),
]

SYMBOLS_AND_TYPOGRAPHY = [
    ("I love it 🎉! Let's go 👍🏽.", "I love it! Let's go."),
    ("👨‍👩‍👧 🇺🇸 1️⃣", "1"),
    ("😀😀😀", ""),
    ("It was—honestly—great.", "It was, honestly, great."),
    ("Wait – what?", "Wait, what?"),
    ("“Quoted” and ‘single’", "\"Quoted\" and 'single'"),
    ("Well…", "Well..."),
    ("— and then", "and then"),
    ("Fish & chips → tasty ™", "Fish and chips to tasty"),
    ("It's 40°C today.", "It's 40 degrees Celsius today."),
    ("Too    many\t spaces\n\n here", "Too many spaces. here"),
    ("   ", ""),
    ("...", ""),
    ("**", ""),
    ("Visit https://docs.python.org/3/library/re.html now.", "Visit docs dot python dot org now."),
    ("Mail jo.doe@example.com.", "Mail jo dot doe at example dot com."),
    ("Dr. Lee and Mr. Smith, e.g. the usual pair, etc.", "Doctor Lee and Mister Smith, for example, the usual pair, et cetera."),
    ("Lakers vs. Celtics, No. 5 on the list", "Lakers versus Celtics, number 5 on the list"),
]

NUMBERS = [
    ("It costs $12.50.", "It costs twelve dollars and fifty cents."),
    ("Only $1 and €5 and £3.20.", "Only one dollar and five euros and three pounds and twenty pence."),
    ("They raised $2.5M.", "They raised two point five million dollars."),
    ("Rates are 4.5% now.", "Rates are four point five percent now."),
    ("It is 10:30.", "It is ten thirty."),
    ("Wake me at 7:05 a.m. please.", "Wake me at seven oh five a m please."),
    ("Meet at 3 p.m. Bring snacks.", "Meet at three p m. Bring snacks."),
    ("Dinner at 6:00", "Dinner at six o'clock"),
    ("The 1st, 2nd, 3rd and 22nd.", "The first, second, third and twenty-second."),
    ("Pi is 3.14159.", "Pi is three point one four one five nine."),
    ("It fell to -3.5 degrees.", "It fell to minus three point five degrees."),
    ("About 1,234,567 people.", "About one million two hundred and thirty four thousand five hundred and sixty seven people."),
    ("Use 1/2 cup, then 3/4 cup.", "Use one half cup, then three quarters cup."),
    ("Walk 5 km or 1 mi.", "Walk five kilometers or one mile."),
    ("It weighs 2 kg.", "It weighs two kilograms."),
    ("Three in a row: 3 in a row.", "Three in a row: three in a row."),
    ("Open 9-5 daily.", "Open nine to five daily."),
    ("Call 555-123-4567.", "Call five five five, one two three, four five six seven."),
    ("Update to v2.1.3 now.", "Update to version two point one point three now."),
    ("Born in 1999, graduated 2021.", "Born in nineteen ninety nine, graduated twenty twenty one."),
    ("Costs $1,200 for 2000 units.", "Costs one thousand two hundred dollars for two thousand units."),
    ("Room 4B has 12 seats.", "Room four B has twelve seats."),
    ("A 10K run.", "A ten K run."),
]


@pytest.mark.parametrize(("text", "expected"), MARKDOWN + SYMBOLS_AND_TYPOGRAPHY)
def test_markup_symbols_and_typography(text: str, expected: str) -> None:
    assert normalize(text, PLAIN) == expected


@pytest.mark.parametrize(("text", "expected"), NUMBERS)
def test_spelled_out_numbers(text: str, expected: str) -> None:
    assert normalize(text, SPELL) == expected


def test_numbers_stay_digits_for_engines_that_read_them() -> None:
    assert normalize("It costs $12.50 at 10:30, 4.5% off.", PLAIN) == "It costs $12.50 at 10:30, 4.5% off."


REALISTIC = st.lists(st.sampled_from([
    "Hello", "world", "Dr.", "e.g.", "**", "*", "_", "__", "`", "```", "#", "- ", "> ", "|", "---", "\n",
    "[a](b)", "https://x.org/a", "a@b.co", "$12.50", "4.5%", "10:30", "3 p.m.", "1st", "5 km", "1/2",
    "-3", "1,000", "v1.2", "555-123-4567", "🎉", "—", "–", "…", "“", "”", ",", ".", "!", "?", ":", " ",
    "<think>", "</think>", "<b>", "°C", "&", "→",
]), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(REALISTIC, st.text(max_size=200)), st.sampled_from([PLAIN, SPELL]))
def test_normalize_is_idempotent_and_never_raises(text: str, options: NormalizerOptions) -> None:
    once = normalize(text, options)
    assert normalize(once, options) == once
    assert once == once.strip() and "  " not in once
    assert once == "" or any(ch.isalnum() for ch in once)
