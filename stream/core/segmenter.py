"""Incremental phrase cutting for a streamed LLM reply (sans-I/O: text and clock readings in, phrases out).

The cutter is a character-level state machine over the current phrase. Every decision is made at a
character position from the text seen so far, so the phrases never depend on how the text was split
into deltas. A boundary is decided at the first non-whitespace character after it (a period is only a
sentence end once the next word shows it), and the whitespace after a boundary stays with the phrase
it ends, so phrases partition the input exactly. See docs/phrasing.md for the policy and its defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CutterConfig", "PhraseCutter", "SynthesisRate"]

_SENTENCE, _CLAUSE = 2, 1

_TERMINALS = frozenset(".!?…")
_CJK_TERMINALS = frozenset("。！？｡؟।॥۔")      # final without a following space
_CLOSERS = frozenset("\"'”’)]}»」』）*_")        # belong to the punctuation run they follow
_CLAUSE_SPACED = frozenset(",;:")                # a clause mark only when whitespace follows
_CLAUSE_UNSPACED = frozenset("，、；：—")          # a clause mark wherever it stands
_DASHES = frozenset("-–—")
_OPENERS = frozenset("([{（")
_CLOSE_BRACKETS = frozenset(")]}）")
_WORD_LEAD = "*_\"'([{`~<>«“‘¿¡"
_QUOTE_OPENERS = frozenset("\"“‘«([{（*_`~")   # something a later character may still close
_QUOTE_AT_WORD = re.compile(r"(?:^|\s)'")      # a single quote opening a word, not an apostrophe
_URL_SCHEMES = frozenset("http https ftp ftps mailto file tel sms ws wss".split())

# A period after these never ends a sentence: titles precede a name, the rest precede more text.
_NEVER_FINAL = frozenset(
    "mr mrs ms mx dr prof st mt ft gen col capt cpt lt sgt rev sen rep gov pres hon fr "
    "e.g i.e cf viz vs approx fig figs vol eq ca dept est pp p".split()
)
# A period after these may end a sentence; it does when a typical sentence opener follows.
_AMBIGUOUS = frozenset("etc inc ltd co corp llc bros jr sr no nos a.m p.m am pm u.s u.k u.s.a e.u".split())
_OPENER_WORDS = frozenset(
    "the a an this that these those then there here it its i i'm i'll i've i'd we we're you you're "
    "he she they my our your his her their but and so or if when while what how why who where which "
    "in on at for after before also however now please let let's yes no sure ok okay thanks thank "
    "note first next finally as to with from by once since because although just all each every "
    "some many most both overall today tomorrow another other".split()
)
# A forced cut should not leave one of these last: it would be said with a dangling intonation.
_FUNCTION_WORDS = frozenset(
    "a an the of to in on at by for with from into onto and or but nor so as than that which who "
    "whose my your his her its our their this these those is are was were be been am will would "
    "can could should may might must not no very if about above after around before behind below "
    "beneath between during like near over per since through under until upon via within without "
    "all any each every some both few many much more most such one two three four five six seven "
    "eight nine ten eleven twelve twenty thirty forty fifty hundred thousand million billion".split()
)
_INITIALISM = re.compile(r"(?:[A-Za-z]{1,2}\.)+[A-Za-z]{1,2}")
_BACKOFF_WORDS = 6


def _good_last_word(token: str) -> bool:
    """A forced cut may follow this token: not a function word, title or number ("Dr. | Lee", "3 | p.m.")."""
    word = token.strip(",;:!?\"'()*_").lower()
    bare = word.rstrip(".")
    return (bare not in _FUNCTION_WORDS and not (word.endswith(".") and bare in _NEVER_FINAL)
            and not any(ch.isdigit() for ch in word))


@dataclass(frozen=True)
class CutterConfig:
    """Thresholds of the cutting policy; each engine declares its own (`Engine.policy`, measured
    values in stream/engines/<name>/policy.py and docs/phrasing.md)."""

    first_min_words: int        # first phrase: clause boundary accepted once this many words are in
    first_max_words: int        # first phrase: forced cut at a word boundary at this many words
    min_words: int              # fragments shorter than this merge forward (unless all there is)
    soft_chars: int             # later phrases: past this, fall back to clause boundaries
    hard_chars: int             # never exceed; cut at a word boundary
    stall_s: float              # tick(now) releases buffered text after this long without new text
    ahead_relaxed_s: float      # audio buffered ahead above this -> prefer longer, sentence-level phrases
    ahead_starving_s: float     # audio ahead below this + synthesis time of the phrase -> cut early at clauses
    relaxed_min_chars: int = 100  # relaxed mode: a sentence end is taken once the phrase is this long
    release_opener: bool = False  # first phrase: a whole sentence goes out at any length, "!"/"?" at once
    synth_s_per_char: float = 0.0  # expected synthesis time per character until a measured one is set

    def __post_init__(self) -> None:
        if not 1 <= self.min_words <= self.first_min_words <= self.first_max_words:
            raise ValueError("need 1 <= min_words <= first_min_words <= first_max_words")
        if not 0 < self.soft_chars <= self.hard_chars:
            raise ValueError("need 0 < soft_chars <= hard_chars")
        if self.ahead_starving_s > self.ahead_relaxed_s:
            raise ValueError("need ahead_starving_s <= ahead_relaxed_s")
        if self.synth_s_per_char < 0:
            raise ValueError("need synth_s_per_char >= 0")


class SynthesisRate:
    """The engine's synthesis time per character of phrase text, as a moving average over the
    phrases it made; what `PhraseCutter.set_synthesis_rate` wants. Queueing before a call counts
    too: it is part of how long the listener waits for a phrase cut now."""

    def __init__(self, weight: float = 0.3) -> None:
        self.seconds_per_char: float | None = None  # None until a phrase has been measured
        self._weight = weight

    def observe(self, characters: int, seconds: float) -> None:
        """One phrase of `characters` (normalized text) took `seconds` from its job's start to its end."""
        if characters <= 0 or seconds < 0:
            return
        rate = seconds / characters
        if self.seconds_per_char is None:
            self.seconds_per_char = rate
        else:
            self.seconds_per_char += self._weight * (rate - self.seconds_per_char)


@dataclass
class _Candidate:
    """A possible boundary waiting for the next non-whitespace character."""

    kind: str            # "term", "clause", or "" (line break only)
    run_start: int       # punctuation run [run_start, run_end)
    run_end: int
    word: str            # the token before the run (leading quotes and markdown stripped)
    line_first: bool     # that token is the first on its line
    spaced: bool = False
    newline: bool = False
    defer_from: int = -1  # decide once the word starting here is complete
    glued: bool = False   # no space before that word: any real word confirms ("done.Then", not "Ph.D")


class PhraseCutter:
    """Turns a stream of text deltas into speakable phrases; one instance per context."""

    def __init__(self, config: CutterConfig) -> None:
        self.config = config
        self._buf = ""
        self._first = True
        self._ahead = 0.0
        self._synth_s_per_char = config.synth_s_per_char
        self._last_text: float | None = None
        self._reset_phrase(line_start=True)

    # -- public API -----------------------------------------------------------------------------
    @property
    def pending(self) -> str:
        """Text received but not yet released as a phrase."""
        return self._buf

    def set_audio_ahead(self, seconds: float) -> None:
        """Hint: seconds of audio queued ahead of the listener; it picks the cutting mode."""
        self._ahead = seconds

    def set_synthesis_rate(self, seconds_per_char: float) -> None:
        """Hint: the engine's measured synthesis time per character of phrase text.

        The listener is starving when the audio queued ahead would run out before the phrase being
        gathered could be synthesized: `ahead < ahead_starving_s + seconds_per_char * its length`.
        """
        self._synth_s_per_char = max(0.0, seconds_per_char)

    def starving_below_s(self) -> float:
        """Audio ahead under which a later phrase is cut early and a stalled one released: the base
        threshold plus the expected synthesis time of the text pending now."""
        return self.config.ahead_starving_s + self._synth_s_per_char * (len(self._buf) - self._code_chars)

    def push(self, delta: str, now: float) -> list[str]:
        """Append an LLM delta and return the phrases that are ready now."""
        if not delta:
            return []
        self._buf += delta
        self._last_text = now
        return self._drain()

    def stall_deadline(self) -> float | None:
        """When `tick` may first release the buffer (None: only new text, `flush` or `end` can)."""
        if self._last_text is None or self._fence or not any(ch.isalnum() for ch in self._buf):
            return None
        return self._last_text + self.config.stall_s

    def tick(self, now: float) -> list[str]:
        """Release the buffer once the text stream has stalled and the listener needs audio.

        Holds while audio is comfortably queued (the hint is re-read on every tick), inside a code
        block, and while nothing speakable is buffered.
        """
        if (self._last_text is None or now - self._last_text < self.config.stall_s or self._fence
                or (not self._first and not self._starving(len(self._buf) - self._code_chars))
                or not any(ch.isalnum() for ch in self._buf)):
            return []
        return [self._emit(len(self._buf))]

    def flush(self) -> list[str]:
        """Release everything buffered now; whitespace alone stays to lead the next phrase."""
        if self._buf.strip():
            return [self._emit(len(self._buf))]
        return []

    def end(self) -> list[str]:
        """No more text: release everything, trailing whitespace included (as its own phrase if alone)."""
        if self._buf:
            return [self._emit(len(self._buf))]
        return []

    # -- phrase state ---------------------------------------------------------------------------
    def _reset_phrase(self, line_start: bool) -> None:
        self._i = 0                                 # next character of _buf to scan
        self._words = 0                             # tokens with a letter or digit
        self._token_start = -1                      # start of the current token, -1 between tokens
        self._token_alnum = False
        self._line_start = 0 if line_start else -1  # -1: the phrase starts mid-line
        self._depth = 0                             # bracket nesting
        self._code = False                          # inside `inline code`
        self._fence = False                         # inside a ``` block
        self._code_chars = 0                        # fenced characters; caps do not count them
        self._run: tuple[str, int] | None = None    # open punctuation run: (kind, start)
        self._cand: _Candidate | None = None
        self._marks: list[tuple[int, int]] = []              # boundaries not taken: (cut, words before)
        self._word_starts: list[tuple[int, int, str]] = []   # (cut, words before, previous token)
        self._prev_token = ""

    def _emit(self, cut: int) -> str:
        text, self._buf = self._buf[:cut], self._buf[cut:]
        self._first = False
        tail = text.rstrip(" \t")
        self._reset_phrase(line_start=tail.endswith("\n"))
        return text

    def _drain(self) -> list[str]:
        out = []
        while (cut := self._scan()) is not None:
            out.append(self._emit(cut))
        return out

    def _mode_first(self, size: int) -> bool:
        """First phrase, or the listener is about to starve: cut as early as quality allows."""
        return self._first or self._starving(size)

    def _starving(self, size: int) -> bool:
        """The queued audio runs out before a phrase of `size` characters could be synthesized."""
        return self._ahead < self.config.ahead_starving_s + self._synth_s_per_char * size

    # -- the scanner ----------------------------------------------------------------------------
    def _scan(self) -> int | None:
        buf = self._buf
        while self._i < len(buf):
            i = self._i
            self._i = i + 1
            cut = self._step(buf, i, buf[i])
            if cut is not None:
                return cut
        return None

    def _step(self, buf: str, i: int, c: str) -> int | None:
        cfg = self.config
        if self._fence:
            self._code_chars += 1
            if c == "`" and self._fence_mark(buf, i):
                self._fence = False
            elif c == "\n":
                self._line_start = i + 1
            return None

        if c.isspace():
            cut = self._space(buf, i, c)
        else:
            cut = self._visible(buf, i, c)
        if cut is not None:
            return cut

        if i + 1 - self._code_chars > cfg.hard_chars:
            return self._fallback(i)
        return None

    def _space(self, buf: str, i: int, c: str) -> int | None:
        if self._run is not None:
            self._close_run(buf, i, spaced=True)
        elif self._cand is not None:
            self._cand.spaced = True
        if self._token_start >= 0:
            token = buf[self._token_start:i]
            cut = self._end_token(buf, i, token)
            if cut is not None:
                return cut
        if c == "\n":
            self._depth = 0
            self._code = False
            self._line_start = i + 1
            if self._cand is None:
                self._cand = _Candidate("", i, i, "", False, spaced=True)
            self._cand.newline = True
        return None

    def _end_token(self, buf: str, i: int, token: str) -> int | None:
        self._prev_token = token
        cand = self._cand
        if cand is not None and cand.defer_from >= 0:
            # Resolve while the token is still current, so it is not counted before the cut.
            cut = self._resolve_deferred(buf, i)
            self._token_start = -1
            return cut
        self._token_start = -1
        if (token and all(ch in "-–" for ch in token) and not self._token_is_line_first(i - len(token))
                and i - len(token) > 0 and buf[i - len(token) - 1].isspace()):
            # A spaced hyphen or en dash ("this - that") reads as a pause; "co-pay" and "5–10" do not.
            self._cand = _Candidate("clause", i - len(token), i, "", False, spaced=True)
        return None

    def _visible(self, buf: str, i: int, c: str) -> int | None:
        cfg = self.config
        if self._run is not None and not self._continues_run(c):
            self._close_run(buf, i, spaced=False)
        cand = self._cand
        if cand is not None:
            if cand.defer_from >= 0:
                if not (c.isalnum() or c in "'’"):
                    cut = self._resolve_deferred(buf, i)
                    if cut is not None:
                        return cut
            else:
                cut = self._decide(buf, i, c)
                if cut is not None:
                    return cut

        if self._token_start < 0:
            self._token_start = i
            self._token_alnum = False
            if i > 0:
                self._word_starts.append((i, self._words, self._prev_token))
                if self._mode_first(i - self._code_chars) and self._words >= cfg.first_max_words:
                    return self._fallback(i)
        if not self._token_alnum and c.isalnum():
            self._token_alnum = True
            self._words += 1

        if c == "`":
            if self._fence_mark(buf, i):
                return self._open_fence(i)
            self._code = not self._code
        elif c in _OPENERS:
            self._depth += 1
        elif c in _CLOSE_BRACKETS and self._depth:
            self._depth -= 1

        if self._run is None:
            if c in _TERMINALS or c in _CJK_TERMINALS:
                self._run = ("term", i)
                if c in "!?" and self._opener_ends_here(buf, i):
                    return i + 1
            elif c in _CLAUSE_SPACED or c in _CLAUSE_UNSPACED:
                self._run = ("clause", i)
                if (c in _CLAUSE_SPACED and self._words >= self.config.first_min_words
                        and self._opener_ends_here(buf, i, clause=True)):
                    return i + 1
        elif c in _TERMINALS or c in _CJK_TERMINALS:
            self._run = ("term", self._run[1])
        return None

    # -- punctuation runs and candidates ----------------------------------------------------------
    def _continues_run(self, c: str) -> bool:
        assert self._run is not None
        kind = self._run[0]
        if c in _CLOSERS:
            return True
        if kind == "term":
            return c in _TERMINALS or c in _CJK_TERMINALS
        return c == "—" and self._buf[self._run[1]] == "—"

    def _close_run(self, buf: str, i: int, spaced: bool) -> None:
        kind, start = self._run  # type: ignore[misc]
        self._run = None
        mark = buf[start]
        if kind == "clause" and mark in _CLAUSE_SPACED and not spaced:
            return  # 1,000 / 10:30 / http: — inside a token
        token_start = self._token_start if self._token_start >= 0 else start
        word = buf[token_start:start].lstrip(_WORD_LEAD)
        self._cand = _Candidate(kind, start, i, word, self._token_is_line_first(token_start), spaced=spaced)

    def _token_is_line_first(self, token_start: int) -> bool:
        if self._line_start < 0 or token_start < self._line_start:
            return False
        lead = self._buf[self._line_start:token_start]
        return not lead.strip(" \t>*+-#")

    def _decide(self, buf: str, i: int, c: str) -> int | None:
        """Judge the pending candidate now that its next visible character `c` (at `i`) is here."""
        cand = self._cand
        assert cand is not None
        if cand.newline:
            strength = _SENTENCE
        elif self._depth or self._code:
            strength = 0
        elif cand.kind == "clause":
            strength = _CLAUSE
        else:
            strength = self._terminal(buf, cand, c)
            if strength < 0:
                cand.defer_from = i
                return None
        self._cand = None
        if strength:
            return self._offer(i, strength)
        return None

    def _terminal(self, buf: str, cand: _Candidate, c: str) -> int:
        """Strength of a terminal run: sentence, clause (ellipsis), 0 (no boundary), -1 (wait a word)."""
        core = buf[cand.run_start:cand.run_end].rstrip("".join(_CLOSERS))
        if any(ch in _CJK_TERMINALS for ch in core):
            return _SENTENCE
        if "…" in core or core.count(".") >= 2:
            return _CLAUSE if cand.spaced and c.isupper() else 0
        word = cand.word
        if not cand.spaced:
            # "3.14", "v2.1", "report.pdf", "U.S.A", "ASP.NET" continue a token; "done.Then" is glued.
            low = word.lower()
            plain = (word.isalpha() and len(word) >= 2 and not word.isupper() and low != "www"
                     and low not in _NEVER_FINAL and low not in _AMBIGUOUS)
            if c.isupper() and plain:
                cand.glued = True
                return -1
            return 0
        if c.islower() or c in ",;:.!?)]}":
            return 0
        if "!" in core or "?" in core:
            return _SENTENCE
        low = word.lower()
        if low in _NEVER_FINAL:
            return 0
        if low in _AMBIGUOUS or _INITIALISM.fullmatch(word) or (len(word) == 1 and word.isalpha()):
            if c.isdigit():
                return 0
            return -1 if c.isupper() else _SENTENCE
        if word.isdigit() and cand.line_first:
            return 0  # "1." opens a numbered list item
        return _SENTENCE

    def _opener_ends_here(self, buf: str, i: int, clause: bool = False) -> bool:
        """A first phrase that is a plain exclamation, question or clause ("Halt!", "Ready?", "Your
        order,") ends at its mark.

        Unlike a period ("example.com", "Dr."), "!" and "?" after a plain word need no next word to
        be a sentence end, nor "," ";" ":" after a word of two letters or more to be a clause mark
        (numbers, times, "https:" and drive letters aside). They are released only when nothing
        opened earlier (a quote, bracket, emphasis or code) could still be closed after the mark
        (`"Stop!" she said`, `**Halt!**`).
        """
        if not (self._first and self.config.release_opener) or self._token_start < 0:
            return False
        word = buf[self._token_start:i]
        before = buf[:self._token_start]
        if clause and (len(word) < 2 or word.lower() in _URL_SCHEMES):
            return False
        return (word[:1].isalpha() and word.replace("'", "").replace("’", "").isalpha()
                and not any(ch in _QUOTE_OPENERS for ch in before) and not _QUOTE_AT_WORD.search(before))

    def _resolve_deferred(self, buf: str, i: int) -> int | None:
        cand = self._cand
        assert cand is not None
        self._cand = None
        word = buf[cand.defer_from:i]
        if (len(word) >= 2 and word.isalpha()) if cand.glued else word.lower() in _OPENER_WORDS:
            return self._offer(cand.defer_from, _SENTENCE)
        return None

    def _offer(self, cut: int, strength: int) -> int | None:
        """Take the boundary before `cut` if the policy accepts it; otherwise remember it."""
        cfg = self.config
        words = self._words_before(cut)
        size = cut - self._code_chars
        if strength == _SENTENCE:
            least = 1 if self._first and cfg.release_opener else cfg.min_words
            ok = words >= least and (
                self._mode_first(size) or self._ahead <= cfg.ahead_relaxed_s or size >= cfg.relaxed_min_chars)
        elif self._mode_first(size):
            ok = words >= cfg.first_min_words
        else:
            ok = words >= cfg.min_words and size > cfg.soft_chars
        if ok:
            return cut
        self._marks.append((cut, words))
        return None

    def _words_before(self, cut: int) -> int:
        """Words wholly before `cut` (the current token counts only if it starts at or after it)."""
        if self._token_start >= cut and self._token_alnum:
            return self._words - 1
        return self._words

    # -- fallbacks when no natural boundary came in time ----------------------------------------------
    def _fallback(self, i: int) -> int:
        """Forced cut at or before `i`: the last boundary seen, else a word boundary, else `i`."""
        min_words = self.config.min_words
        for cut, words in reversed(self._marks):
            if words >= min_words:
                return cut
        starts = [s for s in self._word_starts if s[1] >= 1]
        for cut, words, prev in reversed(starts[-_BACKOFF_WORDS:]):
            if words >= min_words and _good_last_word(prev):
                return cut
        return starts[-1][0] if starts else i

    # -- code fences ------------------------------------------------------------------------------
    def _fence_mark(self, buf: str, i: int) -> bool:
        """True when `buf[i]` completes a ``` at the start of a line."""
        if self._line_start < 0 or i - 2 < self._line_start:
            return False
        return buf[i - 2:i + 1] == "```" and not buf[self._line_start:i - 2].strip(" \t")

    def _open_fence(self, i: int) -> int | None:
        """Code is not spoken: say what came before it now instead of holding it behind the block."""
        start = i - 2
        if start > 0 and self._words_before(start) >= 1:
            return start
        self._fence = True
        self._code = False
        self._run = None
        self._cand = None
        self._code_chars += i + 1 - start
        self._token_start = -1
        return None
