"""The conversation as the language model sees it: a spoken-style system prompt and history.

The history holds what the user said and what the assistant actually got to say: a reply cut
off by the user keeps only the part that was played, marked as interrupted, so the model
knows where it stopped. An exchange the model did not answer (its reply was empty, or only
repeated words: see ``parrot``) stays out of the prompt, so the model cannot learn the pattern.

What the user said about themselves ("my name is Priya") outlives the trimmed history: it is
put at the end of the system message, which changes only when a fact does, so llama.cpp keeps
reusing its cached prompt prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from voxloop.models.base import Message

from .assistant.user_facts import describe, known_facts

SPOKEN_SYSTEM_PROMPT = (
    "You are Vox, a friendly voice assistant that runs locally on the user's computer. "
    "Everything you write is spoken aloud, so answer in one to three short sentences of plain, "
    "conversational English. Never use markdown, lists, code, emoji or links."
)


@dataclass
class Exchange:
    turn_id: int
    user: str
    reply: str = ""
    interrupted: bool = False
    kind: str = "llm"
    """What answered: "llm", "command" for an answer made without the model, or
    ``UNANSWERED`` when the model gave no answer and a fallback was said instead."""


UNANSWERED = "unanswered"
"""``Exchange.kind`` of a turn the model left unanswered (empty, or only parroted words): saved
and exported like any other, never sent back to the model."""


class Dialog:
    def __init__(self, system_prompt: str = SPOKEN_SYSTEM_PROMPT, max_history_chars: int = 4000) -> None:
        self.system_prompt = system_prompt
        self.max_history_chars = max_history_chars
        """Oldest exchanges are dropped past this, so the prompt stays inside the context window."""
        self.exchanges: list[Exchange] = []
        self._oldest_turn = 0
        """Exchanges of earlier turns have been trimmed away."""

    def begin(self, turn_id: int, user_text: str) -> Exchange:
        exchange = Exchange(turn_id, user_text)
        self.exchanges.append(exchange)
        return exchange

    def restore(self, earlier: Sequence[Exchange]) -> None:
        """Put a saved conversation before this one (a resumed session).

        They are renumbered below this run's turn ids (which start at 1), so that trimming,
        which keeps the newest turn ids, treats them as the oldest. Only what fits the budget
        is sent: ``messages`` trims them like any other history.
        """
        restored = [Exchange(i - len(earlier), e.user, e.reply, e.interrupted, e.kind) for i, e in enumerate(earlier)]
        self.exchanges[:0] = restored
        if restored:
            self._oldest_turn = min(self._oldest_turn, restored[0].turn_id)

    def find(self, turn_id: int) -> Exchange | None:
        for exchange in reversed(self.exchanges):
            if exchange.turn_id == turn_id:
                return exchange
        return None

    def messages(self, fits: Callable[[list[Message]], bool] = lambda messages: True) -> list[Message]:
        """The prompt: system, then the newest exchanges that fit, oldest first.

        ``fits`` tells whether a prompt leaves room in the model's context window. Old exchanges
        go first; a single question too long on its own keeps its end (the part just said).
        """
        kept = [e for e in self.exchanges if e.turn_id >= self._oldest_turn and e.kind != UNANSWERED]
        if sum(len(e.user) + len(e.reply) for e in kept) > self.max_history_chars:
            # Trim to half the budget in one go: the start of the prompt then stays the same
            # for many turns, and llama.cpp keeps reusing its cached prefix. Dropping one
            # exchange per turn would change the prefix every turn and re-read the whole prompt.
            size = 0
            for i in range(len(kept) - 1, -1, -1):
                size += len(kept[i].user) + len(kept[i].reply)
                if size > self.max_history_chars // 2 and i < len(kept) - 1:
                    kept = kept[i + 1 :]
                    break
            self._oldest_turn = kept[0].turn_id
        system = self.system_message()
        while True:
            messages = self._render(kept, system)
            if fits(messages):
                return messages
            if len(kept) > 1:
                kept.pop(0)
                continue
            newest = kept[0]
            if len(newest.user) < 40:
                return messages  # nothing left to trim; let the engine report it
            kept = [Exchange(newest.turn_id, newest.user[len(newest.user) // 2 :].lstrip())]

    def user_facts(self) -> str:
        """What the user has said about themselves in any turn so far (restored ones too, and
        those trimmed from the history), as one line for the system message; "" for nothing."""
        return describe(known_facts(e.user for e in self.exchanges))

    def system_message(self) -> str:
        """The system prompt, then what the user told about themselves (last: the prompt's
        start, and llama.cpp's cached prefix, stay the same when a fact is learnt)."""
        facts = self.user_facts()
        return f"{self.system_prompt}\n\n{facts}" if facts else self.system_prompt

    def _render(self, kept: list[Exchange], system: str | None = None) -> list[Message]:
        messages: list[Message] = [{"role": "system", "content": system or self.system_message()}]
        for exchange in kept:
            messages.append({"role": "user", "content": exchange.user})
            if exchange is kept[-1] and not exchange.reply:
                break
            reply = exchange.reply
            if exchange.interrupted:
                # A trailing ellipsis: small models copy bracketed notes into their replies.
                reply = f"{reply}..."
            messages.append({"role": "assistant", "content": reply})
        return messages
