"""A side effect runs only after the user says yes in their own next turn.

``ask(description, run)`` holds the action and gives the question to speak. The next user
turn settles it: a yes runs it, anything else cancels it (nothing runs). Text that is not the
user's own words (the assistant's echo, a document, a tool result) never confirms, whatever it
says: callers pass ``from_user=False`` for it.

The pipeline transcribes provisionally and may take a turn back, so deciding and acting are
separate: ``decide(text)`` is pure and returns a ``Decision`` whose ``settle()`` is run only
once the turn stands. ``answer(text)`` does both at once, for callers without that concern.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_YES = re.compile(
    r"^(?:(?:oh |um |uh |well )?(?:yes|yeah|yep|yup|yes please|sure|ok|okay|please do|do it|go ahead|"
    r"confirm|confirmed|i confirm|affirmative|correct|that's right|delete it|yes do it|yes delete it)"
    r"(?: please| do it| go ahead| thanks| thank you)?)$"
)


def normalize_reply(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]+", " ", text.lower()).split())


def is_yes(text: str) -> bool:
    return bool(_YES.match(normalize_reply(text)))


@dataclass
class PendingAction:
    description: str
    """What will happen, in words ("delete note 2, buy milk")."""
    run: Callable[[], object]
    """Does it (its return value is ignored)."""
    done: str = "Done."
    """What to say once it is done."""


@dataclass(frozen=True)
class Decision:
    confirmed: bool
    reply: str
    gate: ConfirmationGate
    action: PendingAction

    def settle(self) -> str:
        """Apply the decision (once the turn stands): run the action on a yes, drop it either way."""
        if self.gate.pending is not self.action:
            return self.reply  # already settled, or replaced by a newer question
        self.gate.pending = None
        if not self.confirmed:
            logger.info("cancelled: %s", self.action.description)
            return self.reply
        logger.info("confirmed: %s", self.action.description)
        self.action.run()
        return self.reply


class ConfirmationGate:
    def __init__(self) -> None:
        self.pending: PendingAction | None = None

    @staticmethod
    def question(description: str) -> str:
        """What ``ask`` says, known before asking (a command's reply is decided before its effect runs)."""
        # No "yes" in the question: its echo off the speakers must never sound like the answer.
        return f"Do you want me to {description}?"

    def ask(self, description: str, run: Callable[[], object], done: str = "Done.") -> str:
        """Hold ``run`` until the user's next turn; returns the question to speak.

        ``description`` completes "Do you want me to ...?"; ``done`` is said once it has run."""
        self.pending = PendingAction(description, run, done)
        return self.question(description)

    def decide(self, text: str, from_user: bool = True) -> Decision | None:
        """What the turn ``text`` does to the pending action, without doing it.

        None: nothing is pending, or the text is not the user's own (it neither confirms nor
        cancels)."""
        action = self.pending
        if action is None or not from_user:
            return None
        if is_yes(text):
            return Decision(True, action.done, self, action)
        return Decision(False, "Okay, I won't.", self, action)

    def answer(self, text: str, from_user: bool = True) -> str | None:
        """Decide and settle at once: the reply to speak, or None when nothing is pending."""
        decision = self.decide(text, from_user)
        return None if decision is None else decision.settle()
