"""Common commands answered at once, without the language model.

``Commands(context).handle(text)`` returns a ``CommandResult`` for a command, None for anything
else (which goes to the LLM). Matching is pure: the pipeline transcribes at a short pause and
may take the turn back when the user goes on, so a command's side effect (setting a timer,
saving a note) is returned as ``effect`` and run only once the turn stands.

Matching works on a normalized text: lower case, no punctuation, number words as digits,
filler words ("um", "please", "hey vox", "can you") dropped. Patterns are anchored at both
ends, so an open question that merely contains a command's words ("what time did the war
end") is not taken for one. What is kept is the user's own words, not the matcher's: a note
is the transcript's text ("the door code is 0042", "call 555-0123"), taken back through
``Heard.source``; only reading it aloud may say it another way.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .arithmetic import evaluate_spoken
from .confirmation import ConfirmationGate
from .notes import NotesStore
from .number_words import Span, format_number, words_to_digits_spans
from .timers import Timer, Timers, format_clock, format_duration, parse_clock, parse_duration
from .voice_settings import VoiceSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommandResult:
    reply: str
    """What to say (already final: no LLM)."""
    name: str
    """Which command ("time", "timer_set", "arithmetic", ...), for logs and turn records."""
    effect: Callable[[], object] | None = None
    """The side effect, to run only when the turn is confirmed; never when it is retracted.
    Its return value is ignored."""
    stop: bool = False
    """The user asked for silence: stop what is playing."""
    voice: VoiceSettings | None = None
    """Speak this reply with these settings (the effect makes them the new default)."""


def system_timezone() -> dt.tzinfo:
    tz = dt.datetime.now().astimezone().tzinfo
    assert tz is not None
    return tz


def timezone_named(name: str) -> dt.tzinfo:
    """``name`` an IANA zone ("Europe/Paris"); empty: the system's."""
    if not name:
        return system_timezone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'Europe/Paris' or leave it empty for the system's") from None


@dataclass
class CommandContext:
    """What the commands act on. Callbacks keep this layer free of the pipeline and personas."""

    notes: NotesStore
    timers: Timers
    gate: ConfirmationGate = field(default_factory=ConfirmationGate)
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    last_reply: Callable[[], str | None] = lambda: None
    """The assistant's last reply, for "repeat that"."""
    personas: Callable[[], Sequence[str]] = lambda: ()
    """Names of the assistants the user can switch to."""
    switch_persona: Callable[[str], None] = lambda name: None
    greeting: Callable[[str], str] = lambda name: ""
    """What the persona called ``name`` says when the user switches to it ("" for the default)."""

    @classmethod
    def create(
        cls, notes_db: Path, timezone: str = "", now_s: Callable[[], float] = lambda: 0.0, **kwargs: object
    ) -> CommandContext:
        tz = timezone_named(timezone)
        return cls(NotesStore(notes_db), Timers(now_s, lambda: dt.datetime.now(tz)), **kwargs)  # type: ignore[arg-type]


# --- normalization ------------------------------------------------------------------------

_LEADING_FILLER = re.compile(
    r"^(?:(?:hey|hi|ok|okay|so|well|oh|alright|all right) )*(?:vox,? )?"
    r"(?:(?:can|could|would|will) you(?: please)? |please |i want you to |i'd like you to |i need you to |i would like you to )?"
)
_TRAILING_FILLER = re.compile(r"(?: (?:please|for me|thanks|thank you|now|right now|vox))+$")
_FILLER_WORDS = {"um", "uh", "er", "erm", "hmm", "mm", "uhm", "please"}
_DROP = {",", ".", "!", "?", ";", ":", '"', "“", "”"}


_EXPANDED = {"what's": ("what", "is"), "whats": ("what", "is"), "it's": ("it", "is")}


class Heard(str):
    """A transcript as the patterns see it (see ``normalize``) that can give back the words it
    came from: ``source(*match.span("text"))`` is what the user said there, as transcribed."""

    original: str
    spans: tuple[tuple[int, int, int, int], ...]
    """Each word of the normalized text: its start and end there, and in ``original``."""

    def __new__(cls, text: str, original: str, spans: tuple[tuple[int, int, int, int], ...]) -> Heard:
        heard = super().__new__(cls, text)
        heard.original = original
        heard.spans = spans
        return heard

    def source(self, start: int, end: int) -> str:
        """The transcript's own text behind ``self[start:end]``: every character from the first
        word's to the last's (case, digits, hyphens, inner punctuation and all), with the
        quotes or brackets around them, less a trailing full stop, comma, colon or semicolon."""
        picked = [(a, b) for s, e, a, b in self.spans if s < end and e > start]
        if not picked:
            return ""
        text = self.original
        first, last = min(a for a, _ in picked), max(b for _, b in picked)
        while first > 0 and not (text[first - 1].isspace() or text[first - 1].isalnum()):
            first -= 1
        while last < len(text) and not (text[last].isspace() or text[last].isalnum()):
            last += 1
        return text[first:last].lstrip(",;:").rstrip(".,;:").strip()


def normalize(text: str) -> Heard:
    """Lower case, number words as digits, no punctuation or filler words."""
    words: list[Span] = []
    for token, start, end in words_to_digits_spans(text):
        if token not in _DROP and token not in _FILLER_WORDS:
            words.extend((part, start, end) for part in _EXPANDED.get(token, (token,)))
    joined = " ".join(word for word, _, _ in words)
    unled = _LEADING_FILLER.sub("", joined)  # the fillers' patterns take whole words
    rest = _TRAILING_FILLER.sub("", unled)  # a prefix of unled
    kept = rest.strip()
    offset = len(joined) - len(unled) + len(rest) - len(rest.lstrip())
    spans = []
    at = 0
    for word, start, end in words:
        if offset <= at and at + len(word) <= offset + len(kept):
            spans.append((at - offset, at - offset + len(word), start, end))
        at += len(word) + 1
    return Heard(kept, text, tuple(spans))


# --- patterns -------------------------------------------------------------------------------

_STOP = re.compile(
    r"^(?:stop|stop it|stop talking|stop speaking|cancel|cancel that|be quiet|quiet|shut up|shush|hush|silence|"
    r"enough|that is enough|never ?mind|forget it|ok stop|okay stop|stop stop)$"
)
_REPEAT = re.compile(
    r"^(?:repeat|repeat that|repeat it|repeat yourself|say (?:that|it) again|(?:sorry )?what did you (?:just )?say|"
    r"pardon|pardon me|come again|repeat what you (?:just )?said|one more time)$"
)
_VOICE = re.compile(
    r"^(?:(?:speak|talk|say it|read)(?: a (?:little|bit|little bit))?(?: more)? (?P<how>slower|faster|louder|softer|quieter|more slowly|more quickly|more quietly|more softly|up|slowly|quickly|quietly|softly)"
    r"|(?P<short>slower|faster|louder|softer|quieter|slow down|speed up|volume up|volume down|turn it up|turn it down|turn (?:the volume|yourself) (?:up|down)|lower your voice))$"
)
_VOICE_CHANGE = {
    "slower": "slower", "more slowly": "slower", "slowly": "slower", "slow down": "slower",
    "faster": "faster", "more quickly": "faster", "quickly": "faster", "speed up": "faster",
    "louder": "louder", "up": "louder", "volume up": "louder", "turn it up": "louder", "turn the volume up": "louder",
    "turn yourself up": "louder", "softer": "softer", "quieter": "softer", "more quietly": "softer",
    "more softly": "softer", "quietly": "softer", "softly": "softer", "volume down": "softer",
    "turn it down": "softer", "turn the volume down": "softer", "turn yourself down": "softer",
    "lower your voice": "softer",
}  # fmt: skip
_TIME = re.compile(
    r"^(?:what time is it|what is the time|what is the current time|the time|time|current time|tell me the time|"
    r"do you know what time it is|do you have the time|got the time|what time is it (?:now|right now|here)|"
    r"what is the time (?:now|right now))$"
)
_DATE = re.compile(
    r"^(?:what is the date|what is the date today|what is today's date|today's date|the date|date|"
    r"what day is it|what day is it today|what day is today|what is today|what date is it|what date is it today|"
    r"tell me the date|tell me today's date|which day is it|what day of the week is it)$"
)
_HELP = re.compile(
    r"^(?:what can you do|what else can you do|what can you help (?:me )?with|what can i ask you|help|"
    r"what are your (?:commands|skills|features)|what commands do you (?:know|understand)|what do you do)$"
)
_DURATION = r"(?:(?:\d+(?:\.\d+)?|an?|half an?) (?:seconds?|minutes?|hours?|secs?|mins?|hrs?)(?: and 0\.5)?(?: and)? ?)+"
_TIMER_SET = re.compile(
    rf"^(?:(?:set|start|create|make|put on|give me)(?: me)?(?: an?| the)?(?: (?P<label1>[a-z][a-z ]*?))?(?: (?P<adj>\d+(?:\.\d+)? (?:second|minute|hour)))? timer"
    rf"(?: (?:for|of|on) (?P<dur>{_DURATION}))?(?: (?:for|called|named|labeled) (?:the |my )?(?P<label2>[a-z][a-z ]*))?"
    rf"|timer (?:for )?(?P<dur2>{_DURATION})|(?:an? )?(?P<adj2>\d+(?:\.\d+)? (?:second|minute|hour)) timer)$"
)
_TIMER_WORDS = {"a", "an", "the", "new", "another", "one", "quick", "second"}
_ALARM_SET = re.compile(
    r"^(?:(?:set|create|make)(?: me)?(?: an?)? alarm(?: clock)? (?:for|at|to) (?P<at>.+?)|wake me(?: up)? (?:at|by) (?P<at2>.+?)|alarm (?:for|at) (?P<at3>.+?))$"
)
_TIMER_LIST = re.compile(
    r"^(?:(?:what|which|any) (?P<kind>timers|alarms)(?: do i have| are set| are running| are there)?|"
    r"(?:list|show|read|tell me)(?: me)?(?: all)?(?: my| the)? (?P<kind2>timers|alarms)|do i have any (?P<kind3>timers|alarms)|"
    r"how (?:much|long) (?:time )?(?:is )?(?:left|remaining)(?: on (?:the |my )?(?:[a-z0-9 ]*?)(?:timer|alarm))?|"
    r"how long (?:is )?left|how much longer|time left)$"
)
_TIMER_CANCEL = re.compile(
    r"^(?:cancel|stop|delete|remove|turn off|clear|kill)(?: the| my)?(?P<all> all(?: the| my)?| every| both)? ?(?P<what>[a-z0-9 ]*?) ?(?P<kind>timers?|alarms?)(?: (?:number )?(?P<num>\d+))?$"
)
_NOTE_ADD = re.compile(
    r"^(?:(?:take|make|write|add|create|jot down)(?: me)?(?: a| an| new)? note(?: that| saying| to say| of| to self)?"
    r"|note (?:that|to self|down)|add to (?:my )?notes|write down(?: that)?) (?P<text>.+)$"
)
_NOTE_ADD_TO = re.compile(r"^add (?P<text>.+) to (?:my |the )?notes$")
_NOTE_READ = re.compile(
    r"^(?:(?:read|list|show|tell me|give me|go through|what are|what is in|what do i have in)(?: me)?(?: all)?(?: of)?(?: my| the)? notes|"
    r"(?:what|which) notes do i have|do i have (?:any )?notes|my notes|notes)$"
)
_NOTE_READ_ONE = re.compile(r"^(?:read|what is|what does|tell me)(?: me)?(?: the)? note (?:number )?(?P<id>\d+)(?: say)?$")
_NOTE_DELETE = re.compile(r"^(?:delete|remove|erase|clear|cancel)(?: the)? note (?:number )?(?P<id>\d+)$")
_NOTE_DELETE_ALL = re.compile(r"^(?:delete|remove|erase|clear|wipe)(?: all)?(?: of)?(?: my| the)?(?: all)? notes$")
_PERSONA = re.compile(
    r"^(?:(?:switch|change|go|swap)(?: over)? to|talk to|speak to|let me (?:talk|speak) to|i want to (?:talk|speak) to|give me)"
    r" (?:the |my |a )?(?P<name>[a-z0-9 ']+?)(?P<suffix> assistant| persona| mode| helper)?$"
)

HELP_TEXT = (
    "I can tell you the time and the date, set timers and alarms, do sums, take notes and read them back, "
    "repeat what I said, and speak slower, faster, louder or softer. For anything else, just ask."
)


def _sentence(text: str) -> str:
    """``text`` ending as a sentence does: a full stop unless it has its own."""
    return text if text.endswith((".", "!", "?", "…")) else f"{text}."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Commands:
    def __init__(self, context: CommandContext) -> None:
        self.context = context
        self._handlers: list[Callable[[str], CommandResult | None]] = [
            self._stop, self._repeat, self._voice, self._time, self._date, self._help,
            self._timer_set, self._alarm_set, self._timer_list, self._timer_cancel,
            self._note_add, self._note_read, self._note_delete, self._persona, self._arithmetic,
        ]  # fmt: skip

    def handle(self, text: str, from_user: bool = True) -> CommandResult | None:
        """The command ``text`` asks for, or None (not a command: it goes to the LLM).

        ``from_user`` False: words that may not be the user's own answer (said while the
        assistant was still talking, so possibly its echo): they never answer a pending
        confirmation, which stays pending."""
        gate = self.context.gate
        decision = gate.decide(text, from_user)
        if decision is not None:
            # A question is waiting for a yes: this turn answers it, whatever it says.
            return CommandResult(decision.reply, "confirm" if decision.confirmed else "cancel", effect=decision.settle)
        said = normalize(text)
        if not said:
            return None
        for handler in self._handlers:
            result = handler(said)
            if result is not None:
                logger.info("command %s: %r", result.name, said)
                return result
        return None

    def announcements(self, now_s: float) -> list[str]:
        """What to say for each timer or alarm that has gone off by ``now_s`` (each said once)."""
        return [timer.announcement() for timer in self.context.timers.due(now_s)]

    # --- conversation ---------------------------------------------------------------------

    def _stop(self, said: str) -> CommandResult | None:
        return CommandResult("Okay.", "stop", stop=True) if _STOP.match(said) else None

    def _repeat(self, said: str) -> CommandResult | None:
        if not _REPEAT.match(said):
            return None
        last = self.context.last_reply()
        return CommandResult(last or "I haven't said anything yet.", "repeat")

    def _voice(self, said: str) -> CommandResult | None:
        match = _VOICE.match(said)
        if match is None:
            return None
        change = _VOICE_CHANGE[match["how"] or match["short"]]
        old = self.context.voice
        new = old.changed(change)
        if new == old:
            limit = {"slower": "as slow", "faster": "as fast", "louder": "as loud", "softer": "as soft"}[change]
            return CommandResult(f"That's already {limit} as I can go.", "voice")

        def apply() -> None:
            self.context.voice = new

        reply = {"slower": "Okay, I'll speak slower.", "faster": "Okay, I'll speak faster.",
                 "louder": "Okay, I'll speak louder.", "softer": "Okay, I'll speak more softly."}[change]  # fmt: skip
        return CommandResult(reply, "voice", effect=apply, voice=new)

    def _help(self, said: str) -> CommandResult | None:
        return CommandResult(HELP_TEXT, "help") if _HELP.match(said) else None

    def _persona(self, said: str) -> CommandResult | None:
        match = _PERSONA.match(said)
        if match is None:
            return None
        names = list(self.context.personas())
        wanted = match["name"].strip()
        for name in names:
            key = normalize(name)
            if wanted in {key, key.removesuffix(" assistant")} or (wanted.split()[0] == key.split()[0] and len(wanted) > 2):
                reply = self.context.greeting(name) or f"Okay, switching to the {name.removesuffix(' assistant')} assistant."
                return CommandResult(reply, "persona", effect=lambda: self.context.switch_persona(name))
        if match["suffix"] and names:
            return CommandResult(f"I don't know a {wanted} assistant. I have: {', '.join(names)}.", "persona")
        return None  # "talk to me about France" is a question, not a switch

    # --- clock ----------------------------------------------------------------------------

    def _time(self, said: str) -> CommandResult | None:
        if not _TIME.match(said):
            return None
        return CommandResult(f"It's {format_clock(self.context.timers.now())}.", "time")

    def _date(self, said: str) -> CommandResult | None:
        if not _DATE.match(said):
            return None
        now = self.context.timers.now()
        return CommandResult(f"Today is {now.strftime('%A, %B')} {now.day}, {now.year}.", "date")

    # --- timers ---------------------------------------------------------------------------

    def _timer_set(self, said: str) -> CommandResult | None:
        match = _TIMER_SET.match(said)
        if match is None:
            return None
        duration = parse_duration(match["dur"] or match["dur2"] or "") or parse_duration(f"{match['adj'] or match['adj2'] or ''}s")
        label = (match["label1"] or match["label2"] or "").strip()
        if label in _TIMER_WORDS:
            label = ""
        if duration is None:
            return CommandResult("For how long? Say, for example: set a timer for 5 minutes.", "timer_set")
        timers = self.context.timers

        def start() -> None:
            timers.add(duration, label)

        named = f"{label} timer" if label else "timer"
        return CommandResult(f"Okay, {named} for {format_duration(duration)}, starting now.", "timer_set", effect=start)

    def _alarm_set(self, said: str) -> CommandResult | None:
        match = _ALARM_SET.match(said)
        if match is None:
            return None
        timers = self.context.timers
        at = parse_clock(match["at"] or match["at2"] or match["at3"], timers.now())
        if at is None:
            return CommandResult("For what time? Say, for example: set an alarm for 7 am.", "alarm_set")
        day = "today" if at.date() == timers.now().date() else "tomorrow"
        return CommandResult(f"Okay, alarm set for {format_clock(at)} {day}.", "alarm_set", effect=lambda: timers.add_alarm(at))

    def _timer_list(self, said: str) -> CommandResult | None:
        match = _TIMER_LIST.match(said)
        if match is None:
            return None
        timers = self.context.timers
        active = timers.active()
        kind = (match["kind"] or match["kind2"] or match["kind3"] or "").rstrip("s")
        if kind:
            shown = [t for t in active if t.kind == kind]
        else:
            shown = [t for t in active if t.kind == "timer"] or active
        what = kind or "timer"
        if not shown:
            return CommandResult(f"You have no {what}s set.", "timer_list")
        if len(shown) == 1:
            return CommandResult(f"You have one {shown[0].kind}: {timers.describe(shown[0])}.", "timer_list")
        listed = "; ".join(f"{i}, {timers.describe(t)}" for i, t in enumerate(shown, 1))
        return CommandResult(f"You have {len(shown)} {what}s: {listed}.", "timer_list")

    def _timer_cancel(self, said: str) -> CommandResult | None:
        match = _TIMER_CANCEL.match(said)
        if match is None:
            return None
        timers = self.context.timers
        kind = match["kind"].rstrip("s")
        candidates = [t for t in timers.active() if t.kind == kind]
        chosen: list[Timer]
        if match["all"]:
            chosen = candidates
        elif match["num"]:
            n = int(match["num"])
            chosen = candidates[n - 1 : n] if n >= 1 else []
            if not chosen:
                return CommandResult(f"There's no {kind} {n}. You have {_plural(len(candidates), kind)}.", "timer_cancel")
        elif match["what"] and match["what"] not in _TIMER_WORDS:
            what = match["what"]
            chosen = [t for t in candidates if what in {t.label, t.name().removeprefix("the ").rsplit(" ", 1)[0]}]
            if not chosen:
                return CommandResult(f"I can't find a {what} {kind}.", "timer_cancel")
        else:
            chosen = candidates
            if len(chosen) > 1:
                return CommandResult(
                    f"You have {len(chosen)} {kind}s. Which one? Say, for example: cancel {kind} 1, or cancel all {kind}s.",
                    "timer_cancel",
                )
        if not chosen:
            return CommandResult(f"There's no {kind} to cancel.", "timer_cancel")
        ids = [t.id for t in chosen]
        names = chosen[0].name() if len(chosen) == 1 else f"all {len(chosen)} {kind}s"
        return CommandResult(f"Okay, I cancelled {names}.", "timer_cancel", effect=lambda: timers.cancel(ids))

    # --- notes ----------------------------------------------------------------------------

    def _note_add(self, said: str) -> CommandResult | None:
        match = _NOTE_ADD.match(said) or _NOTE_ADD_TO.match(said)
        if match is None:
            return None
        # The user's own words, as transcribed: "0042" stays 0042, "555-0123" stays whole.
        assert isinstance(said, Heard)
        text = said.source(*match.span("text")) or match["text"].strip()
        notes = self.context.notes
        number = notes.next_id()
        return CommandResult(f"Okay, note {number}: {_sentence(text)}", "note_add", effect=lambda: notes.add(text))

    def _note_read(self, said: str) -> CommandResult | None:
        notes = self.context.notes
        one = _NOTE_READ_ONE.match(said)
        if one is not None:
            note = notes.get(int(one["id"]))
            return CommandResult(f"Note {note.id}: {_sentence(note.text)}" if note else f"There's no note {one['id']}.", "note_read")
        if not _NOTE_READ.match(said):
            return None
        found = notes.list()
        if not found:
            return CommandResult("You have no notes.", "note_read")
        listed = " ".join(f"Note {n.id}: {_sentence(n.text)}" for n in found)
        return CommandResult(f"You have {_plural(len(found), 'note')}. {listed}", "note_read")

    def _note_delete(self, said: str) -> CommandResult | None:
        notes, gate = self.context.notes, self.context.gate
        one = _NOTE_DELETE.match(said)
        if one is not None:
            note = notes.get(int(one["id"]))
            if note is None:
                return CommandResult(f"There's no note {one['id']}.", "note_delete")
            description = f"delete note {note.id}, {note.text.rstrip('.?!')}"
            return CommandResult(
                gate.question(description),
                "note_delete",
                effect=lambda: gate.ask(description, lambda: notes.delete(note.id), done=f"Deleted note {note.id}.")
               ,
            )
        if not _NOTE_DELETE_ALL.match(said):
            return None
        count = len(notes.list())
        if not count:
            return CommandResult("You have no notes.", "note_delete")
        description = f"delete all {_plural(count, 'note')}" if count > 1 else "delete your only note"
        return CommandResult(
            gate.question(description),
            "note_delete_all",
            effect=lambda: gate.ask(description, lambda: notes.delete_all(), done="Deleted all your notes."),
        )

    # --- arithmetic -----------------------------------------------------------------------

    def _arithmetic(self, said: str) -> CommandResult | None:
        answer = evaluate_spoken(said)
        return None if answer is None else CommandResult(answer.reply, "arithmetic")


__all__ = ["CommandContext", "CommandResult", "Commands", "Heard", "format_number", "normalize", "timezone_named"]
