"""What the user's words mean when they come while the assistant is speaking.

At the first voiced frames over a reply, playback pauses (that is what makes the assistant
stop within a tenth of a second); nothing is cancelled yet. When the words are known, this
module says what they were:

- ``echo``: the assistant's own speech that leaked past the echo canceller;
- ``backchannel``: "mm-hmm", "yeah", "right": the listener is listening, not taking the floor;
- ``stop``: "stop", "wait", "be quiet": cut the reply and say nothing;
- ``interrupt``: anything else: cut the reply and answer the new words.

Echo and backchannels resume the reply where it paused; so does a false trigger (a cough, a
knock, no words at all), which never gets this far.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

BACKCHANNELS = (
    "mm hmm", "mhm", "mm", "hmm", "uh huh", "uh-huh", "yeah", "yes", "yep", "yup", "right",
    "okay", "ok", "sure", "i see", "got it", "alright", "all right", "cool", "nice", "wow",
    "oh", "ah", "aha", "interesting", "exactly", "true", "totally", "indeed",
    "great", "good", "perfect", "fine", "of course", "that's right", "that's okay", "that's true",
)  # fmt: skip
STOP_WORDS = (
    "stop", "wait", "no", "hold on", "hang on", "cancel", "be quiet", "quiet", "shut up",
    "pause", "enough", "never mind", "nevermind", "stop it", "stop talking", "okay stop",
    # the instant command's stop phrases too (assistant/commands.py), said over a reply
    "stop speaking", "cancel that", "shush", "hush", "silence", "that is enough",
    "that's enough", "forget it", "stop stop",
)  # fmt: skip


@dataclass
class BargeInConfig:
    pause_on_voice_ms: int = 40
    """Voiced time over a reply that pauses it at once (before the utterance is confirmed)."""
    commit_after_ms: int = 1500
    """Voiced time after which the interruption stands even before any words are known:
    longer than any backchannel."""
    backchannels: tuple[str, ...] = BACKCHANNELS
    """Words that, said alone (possibly repeated), leave the reply playing."""
    stop_words: tuple[str, ...] = STOP_WORDS
    """Words that, said alone, cut the reply without a new answer."""
    echo_similarity: float = 0.6
    """Share of the heard words found in order in what the assistant just said that makes
    a transcript the assistant's own echo."""
    echo_tail_s: float = 0.5
    """An utterance that starts this long after a reply's audio ended cannot be its echo (a
    room's delay and reverberation are shorter): the user may well repeat its words."""
    min_words: int = 2
    """Words it takes (besides a stop word) to take the floor over a reply."""
    stop_within_words: int = 2
    """A stop word (other than a bare "no") in an utterance this short still means stop:
    "let's stop", "stop please", and the stray word the recognizer adds from the echo's
    tail ("great, stop"). Not after a negation ("don't stop")."""
    ignore_words: tuple[str, ...] = field(default=("um", "uh", "er", "ah", "oh", "so", "well", "and", "vox", "hey", "please"))
    """Fillers stripped before matching ("oh, okay" is a backchannel, "well, stop" a stop)."""


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def _phrase_only(heard: list[str], phrases: tuple[str, ...], ignore: tuple[str, ...]) -> bool:
    """Every word belongs to one of ``phrases`` (said once or repeated), fillers aside."""
    options = sorted((words(p) for p in phrases), key=len, reverse=True)
    i, matched = 0, False
    while i < len(heard):
        for option in options:
            if option and heard[i : i + len(option)] == option:
                i += len(option)
                matched = True
                break
        else:
            if heard[i] not in ignore:
                return False
            i += 1
    return matched


NEGATIONS = ("don't", "dont", "not", "never", "can't", "won't")
"""Words that turn a stop word around ("don't stop", "do not wait")."""


def _holds_phrase(heard: list[str], phrases: tuple[str, ...]) -> bool:
    for phrase in phrases:
        option = words(phrase)
        if option and any(heard[i : i + len(option)] == option for i in range(len(heard))):
            return True
    return False


def is_echo(text: str, said: list[str], threshold: float) -> bool:
    """``text`` is mostly a run of words from what the assistant said (``said``)."""
    heard = words(text)
    if not heard:
        return False
    best = 0.0
    for reply in said:
        spoken = words(reply)
        if not spoken:
            continue
        matcher = difflib.SequenceMatcher(a=heard, b=spoken, autojunk=False)
        matched = sum(block.size for block in matcher.get_matching_blocks())
        best = max(best, matched / len(heard))
    return best >= threshold


def classify(text: str, said: list[str], config: BargeInConfig) -> str:
    """``echo``, ``backchannel``, ``stop`` or ``interrupt`` (see the module docstring)."""
    heard = words(text)
    if not heard:
        return "backchannel"  # nothing worth stopping for
    # One or two words match some reply by chance ("no" in "no, Paris is..."): for those, the
    # user's meaning comes first; longer runs of the reply's words are its echo.
    echo = is_echo(text, said, config.echo_similarity)
    if echo and len(heard) > 2:
        return "echo"
    if _phrase_only(heard, config.stop_words, config.ignore_words):
        return "stop"
    meant = [w for w in heard if w not in config.ignore_words]
    firm = tuple(p for p in config.stop_words if p != "no")
    if len(meant) <= config.stop_within_words and _holds_phrase(meant, firm) and not set(meant) & set(NEGATIONS):
        return "stop"
    if _phrase_only(heard, config.backchannels, config.ignore_words):
        return "backchannel"
    if echo:
        return "echo"
    # A single word over the reply that is neither "stop" nor a nod is too little to take the
    # floor on: most often the recognizer's guess at a leak of the assistant's own voice.
    return "backchannel" if len([w for w in heard if w not in config.ignore_words]) < config.min_words else "interrupt"
