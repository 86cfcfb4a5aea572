"""A shortened soak (``scripts/soak.py``): ~30 utterances of a varied session, one replay.

Questions, human recordings, barge-ins, a speaker who pauses mid-thought, quiet, clipped and
noisy speech, silences and noise bursts, and a language model that fails on every 17th call,
all replayed by one session on the simulated clock while a thread samples memory, threads and
open files. The run is shared by the tests below; each checks one promise.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import load_script
from voxloop.pipeline.engines import Engines
from voxloop.pipeline.reply_stage import APOLOGY

soak = load_script("soak")

UTTERANCES = 30
SEED = 18
"""A plan with every kind of bad moment in its 30 utterances (checked in test_the_plan...)."""
MIN_ANSWERED = 25
RSS_GROWTH_LIMIT_PCT = 15.0
"""First third against last third. Looser than the soak's 5% (first and last tenth of 200+
turns): 30 turns take well under a minute, so allocator warm-up and the ~50 MB swings of one
synthesis or decode are a large share of each window."""


@pytest.fixture(scope="module")
def run(engines: Engines, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return soak.run_soak(engines, UTTERANCES, SEED, tmp_path_factory.mktemp("soak"), window_fraction=1 / 3)


def test_the_plan_has_every_kind_of_moment(run: Any) -> None:
    [plan] = run.plans
    kinds = {p.kind for p in plan.items}
    assert kinds >= {"question", "recording", "interrupt", "continued", "quiet", "clipped", "noisy"}, kinds
    assert kinds & {"white", "brown", "hum", "clicks"} and "silence" in kinds, kinds
    assert plan.utterances == UTTERANCES
    assert run.llm.failures >= 1, "the run is too short for an injected LLM failure"


def test_the_questions_are_answered(run: Any) -> None:
    answered = [t for t in run.turns if t.assistant_text.strip()]
    assert len(answered) >= MIN_ANSWERED, [(t.user_text, t.assistant_text) for t in run.turns]


def test_noise_and_silence_make_no_turn(run: Any) -> None:
    [plan] = run.plans
    speech_segments = sum(1 for p in plan.items if p.is_speech)
    # A speaker who pauses between words ("one ... two ... three") makes a turn per pause, each
    # cut by the next and carried into it: those are one question, answered once.
    carried_on = [a for a, b in zip(run.turns, run.turns[1:]) if a.interrupted and b.user_text.startswith(a.user_text)]
    assert len(run.turns) - len(carried_on) <= speech_segments
    on_noise = [(t.user_start_s, t.user_text) for t in run.turns if plan.heard_in(t) is None]
    assert on_noise == []
    assert run.report.turns_on_noise == 0


def test_speaking_over_the_reply_interrupts_it(run: Any) -> None:
    [plan] = run.plans
    interrupts = [p for p in plan.items if p.kind == "interrupt"]
    barged = []
    for earlier, later in zip(run.turns, run.turns[1:]):
        if earlier.interrupted and plan.heard_in(later) in interrupts:
            barged.append(earlier)
    assert barged, [(t.user_text, t.interrupted) for t in run.turns]
    for turn in barged:
        # Cut while talking: the reply had started and only what was heard is kept.
        assert turn.reply_start_s is not None and turn.reply_end_s is None


def test_a_failing_language_model_is_answered_with_the_apology(run: Any) -> None:
    failed = [t for t in run.turns if t.error and t.error.startswith("llm: injected")]
    # A failure during a head start that the user talked on through is retracted with it (the
    # question is asked again and answered): it is on no turn's record. The others stand.
    assert 1 <= len(failed) <= run.llm.failures
    for turn in failed:
        assert soak.spoke_apology(turn, APOLOGY), turn
    assert run.report.apologies_missing == 0
    # No apology without a failure, and the conversation went on after each failure.
    assert all(t.error for t in run.turns if t.assistant_text == APOLOGY)
    last_failure = max(run.turns.index(t) for t in failed)
    assert any(t.assistant_text.strip() and not t.error for t in run.turns[last_failure + 1 :])


def test_threads_files_and_memory_stay_flat(run: Any) -> None:
    r = run.report
    assert r.samples >= 10
    # During the run: the last third against the first.
    assert r.os_threads_last.max <= r.os_threads_first.max + 2, r
    assert r.fds_last.max <= r.fds_first.max + 3, r
    # After it: the session's threads have ended and its files are closed.
    assert r.leftover_threads == []
    assert r.after["os_threads"] <= r.before["os_threads"] + 2, (r.os_threads_new, r.os_threads_gone)
    assert r.after["fds"] <= r.before["fds"] + 3
    assert r.rss_growth_pct < RSS_GROWTH_LIMIT_PCT, soak.format_report(r)
