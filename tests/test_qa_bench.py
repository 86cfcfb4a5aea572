"""``scripts/bench.py --qa``: the QA set is well formed, the scoring counts right what is right,
and a quick run on the bundled tier gives a complete report.

The benchmark is a measurement, so nothing here checks an accuracy or a latency: only that
every figure the report promises is there and plausible.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "bench.py"
QUICK_TIMEOUT_S = 480
"""A paced run of 4 questions and a 3-turn memory check takes ~80 s on a 2-core machine; generous
for a busy one."""

qa = load_script("qa_bench")
qa_set = load_script("qa_set")


# --- the set ------------------------------------------------------------------------------


def test_the_set_has_enough_questions_spoken_half_by_each_voice() -> None:
    questions = qa_set.QUESTIONS
    assert len(questions) >= 48
    assert len({q.id for q in questions}) == len(questions)
    assert len({q.question.lower() for q in questions}) == len(questions)
    voices = [q.voice for q in questions]
    assert set(voices) == {"piper", "espeak"}
    assert voices.count("piper") == voices.count("espeak")
    assert len({q.topic for q in questions}) >= 6
    assert all(q.answers for q in questions)
    assert len(qa_set.MEMORY_CHECKS) >= 3
    for check in qa_set.MEMORY_CHECKS:
        assert len(check.turns) >= 3 and check.answers and check.voice in ("piper", "espeak")
    assert set(qa_set.QUICK_QUESTIONS) <= {q.id for q in questions}


def test_no_question_contains_its_own_answer() -> None:
    """Else a reply that only repeats the question would count as right."""
    for q in qa_set.QUESTIONS:
        assert not qa.is_right(q.question, q.answers), q
    for check in qa_set.MEMORY_CHECKS:
        assert not qa.is_right(check.turns[-1], check.answers), check
        # ...but the first turn tells it.
        assert qa.is_right(check.turns[0], check.answers), check


# --- scoring ------------------------------------------------------------------------------


def test_a_right_answer_is_counted_right_and_a_wrong_one_wrong() -> None:
    assert qa.is_right("The largest ocean on Earth is the Pacific Ocean.", ["pacific"])
    assert not qa.is_right("The largest ocean on Earth is the Atlantic.", ["pacific"])
    assert not qa.is_right("", ["pacific"])
    # Whole words only: "au" is no answer inside "Paul" or "autumn".
    assert not qa.is_right("Paul said so, in autumn.", ["au"])
    assert qa.is_right("Its symbol is Au.", ["au"])
    assert qa.is_right("Shakespeare's play, of course.", ["shakespeare"])
    assert qa.is_right("Cats have kittens.", ["kitten"])  # a plural is the answer too
    assert qa.is_right("It was Leonardo da Vinci.", ["da vinci"])
    assert qa.is_right("Plants take in CO₂.", ["co2"])
    assert qa.is_right("around 1945, I think", ["re:\\b19(?:45| 45)\\b"])


def test_number_words_and_digits_are_the_same_answer() -> None:
    assert qa.is_right("A spider has eight legs.", ["8"])
    assert qa.is_right("A spider has 8 legs.", ["eight"])
    assert qa.is_right("There are two hundred and six bones.", ["206"])
    assert qa.is_right("A kilogram is one thousand grams.", ["1000"])
    assert qa.is_right("A kilogram is 1,000 grams.", ["1000"])
    assert qa.is_right("A meter is a hundred centimeters.", ["100"])
    assert qa.is_right("Twenty-four hours.", ["24"])
    assert qa.is_right("Three hundred sixty-six days.", ["366"])
    assert qa.is_right("It ended in nineteen forty-five.", ["1945", "19 45"])
    assert not qa.is_right("A spider has eighty legs.", ["8"])
    assert not qa.is_right("It has twenty-eight days.", ["8"])
    assert not qa.is_right("One hundred and sixty.", ["100"])
    assert qa.normalize_answer("Two and three") == "2 and 3"  # "and" joins numbers only after hundred/thousand


def test_a_reply_that_repeats_the_question_is_parroted() -> None:
    question = "What is the largest ocean on Earth?"
    assert qa.is_parroted("What is the largest ocean on earth.", question)
    assert qa.is_parroted("The largest ocean on Earth?", question)
    assert not qa.is_parroted("The largest ocean on Earth is the Pacific.", question)
    assert not qa.is_parroted("The Pacific.", question)
    assert not qa.is_parroted("", question)
    # Against what was heard, when the recognizer got the question wrong.
    assert qa.is_parroted("How many days are in a leak here?", "How many days are in a leap year?", "How many days are in a leak here?")
    assert qa.parrot_ratio(question, question) == 1.0
    # The question's words around the answer: an answer, not a parrot.
    red = "Which planet is known as the red planet?"
    assert qa.is_parroted("Mars is known as the red planet.", red)
    assert not qa.is_parroted("Mars is known as the red planet.", red, answers=["mars"])
    assert qa.is_parroted("Which planet is known as the red planet.", red, answers=["mars"])


def test_the_guard_field_of_the_turn_log_is_read_when_there_is_one() -> None:
    assert qa.guard_dropped({"parroted": 2}) == 2
    assert qa.guard_dropped({"parroted": 0}) is None
    assert qa.guard_dropped({}) is None


def test_tiers_are_names_paths_or_name_equals_path() -> None:
    assert [t.name for t in qa.parse_tiers(None)] == qa.DEFAULT_TIERS
    assert qa.parse_tiers("smollm2-135m, q=/tmp/x.gguf,/m/qwen.gguf") == [
        qa.TierSpec("smollm2-135m", "smollm2-135m"),
        qa.TierSpec("q", "/tmp/x.gguf"),
        qa.TierSpec("qwen", "/m/qwen.gguf"),
    ]


def _turn(latency: float | None, guard: int | None = None) -> dict[str, Any]:
    shares = {"endpoint": 300.0, "output": 50.0} if latency else {}
    stages = {"endpoint": 300.0, "llm_first_token": latency / 10} if latency else {}
    return {"latency_ms": latency, "shares": shares, "stages": stages, "guard": guard}


def test_figures_per_tier_from_answers() -> None:
    def row(voice: str, right: bool, heard_wer: float, parroted: bool = False) -> dict[str, Any]:
        return {"voice": voice, "right": right, "heard_wer": heard_wer, "parroted": parroted, "guard": [], "turns": [_turn(400.0)]}

    questions = [row("piper", True, 0.0), row("piper", False, 0.0, parroted=True), row("espeak", True, 0.2), row("espeak", False, 0.5)]
    memory = [{"passed": True, "turns": [{"parroted": False, "guard": [1], "turns": [_turn(600.0, 1)]}]},
              {"passed": False, "turns": [{"parroted": False, "guard": [], "turns": [_turn(None)]}]}]  # fmt: skip
    figures = qa.tier_figures(questions, memory)
    a = figures["accuracy"]
    assert (a["piper"], a["espeak"], a["all"]) == (50.0, 50.0, 50.0)
    assert (a["heard_right"], a["when_heard_right"]) == (50.0, 50.0)
    assert figures["memory"] == {"passed": 1, "n": 2}
    assert figures["parroted"] == {"replies": 6, "parroted": 1, "guard": 1}
    assert figures["latency_ms"]["n"] == 5 and figures["latency_ms"]["median"] == 400.0
    assert figures["share_median_ms"] == {"endpoint": 300.0, "output": 50.0}
    assert figures["stage_median_ms"] == {"endpoint": 300.0, "llm_first_token": 40.0}


def test_the_model_speed_is_the_better_of_two_windows() -> None:
    busy = {"first_token_ms": 900.0, "tokens_per_s": 4.0}
    quiet = {"first_token_ms": 150.0, "tokens_per_s": 30.0}
    best = qa.best_window([busy, quiet])
    assert (best["first_token_ms"], best["tokens_per_s"]) == (150.0, 30.0)
    assert best["windows"] == [busy, quiet]
    assert qa.best_window([{"first_token_ms": None, "tokens_per_s": None}])["tokens_per_s"] is None


# --- a quick run ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    out = tmp_path_factory.mktemp("qa")
    report, plot = out / "qa.json", out / "qa.svg"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--qa", "--quick", "--json", str(report), "--plot", str(plot)],
        cwd=out, capture_output=True, text=True, timeout=QUICK_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(report.read_text(encoding="utf-8")), proc.stdout, plot


@pytest.mark.models
def test_quick_run_reports_every_figure_for_the_bundled_tier(quick: tuple[dict[str, Any], str, Path]) -> None:
    report, stdout, _ = quick
    assert report["quick"] and not report["fast"]
    assert report["qa_set"] == {"questions": 4, "piper": 2, "espeak": 2, "memory_checks": 1}
    [tier] = report["tiers"]
    assert tier["tier"] == "smollm2-135m" and tier["status"] == "ok"

    a = tier["accuracy"]
    assert (a["n"], a["n_piper"], a["n_espeak"]) == (4, 2, 2)
    for key in ("piper", "espeak", "all", "heard_right"):
        assert 0.0 <= a[key] <= 100.0
    assert a["right"] == sum(q["right"] for q in tier["questions"])
    assert tier["memory"]["n"] == 1 and tier["memory"]["passed"] in (0, 1)
    assert tier["parroted"]["replies"] == 4 + 3  # four questions, a three-turn memory check
    assert 0 <= tier["parroted"]["parroted"] <= tier["parroted"]["replies"]

    for q in tier["questions"]:
        assert q["heard"], q  # the recognizer heard something of each question
        assert q["right"] == qa.is_right(q["reply"], q["answers"])
        for turn in q["turns"]:
            assert turn["latency_ms"] > 0, turn
            assert sum(turn["shares"].values()) == pytest.approx(turn["latency_ms"], abs=1.0)
    latency = tier["latency_ms"]
    assert latency["n"] >= 4
    assert 0 < latency["median"] <= latency["p95"] <= latency["max"]
    assert set(tier["share_median_ms"]) >= {"endpoint", "llm_first_token", "output"}

    llm = tier["llm"]
    assert llm["tokens_per_s"] > 1 and 0 < llm["first_token_ms"] < 10_000
    assert len(llm["windows"]) == 2  # before and after the replays
    assert all(run["tokens"] > 0 for window in llm["windows"] for run in window["runs"])
    assert tier["stage_median_ms"]["llm_first_token"] > 0
    memory = tier["memory_mb"]
    assert tier["memory_mb"]["peak"] >= memory["rss_after_load"] * 0.99 > 100

    assert "Answers per model tier" in stdout and "smollm2-135m" in stdout
    assert "Per question" in stdout


@pytest.mark.models
def test_quick_run_draws_latency_against_accuracy(quick: tuple[dict[str, Any], str, Path]) -> None:
    report, _, plot = quick
    svg = plot.read_text(encoding="utf-8")
    assert svg.startswith("<svg") and "smollm2-135m" in svg and "<circle" in svg
    # And again from the saved figures, with a tier that was not installed among them.
    report["tiers"].append({"tier": "qwen2.5-coder-1.5b", "status": "not installed", "error": "no such file"})
    again = plot.with_name("again.svg")
    qa.plot_svg(report, again)
    assert again.read_text(encoding="utf-8").count("<circle") == 1
