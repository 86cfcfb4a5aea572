"""A side effect runs only after the user's own yes."""

from __future__ import annotations

import pytest

from voxloop.pipeline.assistant.confirmation import ConfirmationGate


@pytest.mark.parametrize("yes", ["yes", "Yes.", "yeah", "yes please", "Do it!", "confirm", "okay", "sure", "go ahead", "um yes"])
def test_a_yes_runs_the_action_once(yes: str) -> None:
    gate, ran = ConfirmationGate(), []
    assert gate.ask("delete note 2", lambda: ran.append(1), done="Deleted note 2.") == (
        "Do you want me to delete note 2?"
    )
    assert gate.answer(yes) == "Deleted note 2."
    assert ran == [1]
    assert gate.answer("yes") is None  # nothing pending any more
    assert ran == [1]


@pytest.mark.parametrize("other", ["no", "nope", "wait", "what time is it", "yes and no", "yesterday", "", "don't do it"])
def test_anything_else_cancels_and_nothing_runs(other: str) -> None:
    gate, ran = ConfirmationGate(), []
    gate.ask("delete all notes", lambda: ran.append(1))
    assert gate.answer(other) == "Okay, I won't."
    assert ran == [] and gate.pending is None


def test_the_assistants_own_echo_never_confirms() -> None:
    gate, ran = ConfirmationGate(), []
    gate.ask("delete all notes", lambda: ran.append(1))
    assert gate.answer("yes", from_user=False) is None
    assert ran == [] and gate.pending is not None  # still waiting for the user


def test_deciding_is_pure_until_settled_and_a_stale_decision_does_nothing() -> None:
    gate, ran = ConfirmationGate(), []
    gate.ask("delete note 1", lambda: ran.append(1))
    decision = gate.decide("yes")
    assert decision is not None and decision.confirmed and ran == []  # a provisional turn may be taken back
    gate.ask("delete note 2", lambda: ran.append(2))  # a newer question replaced it
    decision.settle()
    assert ran == []
    assert gate.answer("yes") == "Done." and ran == [2]
