"""``scripts/bench.py``: a quick paced run gives a complete, sane report; the arithmetic behind it.

The benchmark is a measurement, so nothing here checks a latency target: only that every
figure the report promises is there and physically plausible.
"""

from __future__ import annotations

import importlib.util
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
"""A paced run of 3 questions takes ~40 s on an idle 2-core machine; generous for a busy one."""


bench = load_script("bench")


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    out = tmp_path_factory.mktemp("bench")
    report, plot = out / "bench.json", out / "bench.png"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(report), "--plot", str(plot)],
        cwd=out, capture_output=True, text=True, timeout=QUICK_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(report.read_text(encoding="utf-8")), proc.stdout, plot


@pytest.mark.models
def test_quick_run_reports_every_figure(
    quick: tuple[dict[str, Any], str, Path],
) -> None:
    report, stdout, _ = quick
    latency = report["latency_ms"]
    assert latency["n"] >= 3
    assert 0 < latency["median"] <= latency["p95"] <= latency["max"]

    assert len(report["inputs"]) == 3
    assert len(report["turns"]) >= 3
    for turn in report["turns"]:
        assert turn["latency_ms"] > 0, turn
        assert {
            "endpoint",
            "asr",
            "llm_first_token",
            "first_sentence",
            "tts_first_chunk",
        } <= set(turn["stages"]), turn
        assert set(turn["shares"]) >= set(bench.SHARES)
        # The shares lay the latency out along the critical path: they add up to it.
        assert sum(turn["shares"].values()) == pytest.approx(turn["latency_ms"], abs=1.0)
        assert 0.0 <= turn["wer"] <= 1.0

    assert report["wer"]["references"] == 3
    assert 0.0 <= report["wer"]["pipeline"] <= 1.0
    assert 0.0 <= report["wer"]["asr_direct"] <= 1.0
    assert 0 < report["rtf"]["asr"] < 10 and 0 < report["rtf"]["tts"] < 10

    assert report["peak_rss_mb"] > 100
    memory = report["memory"]
    assert report["peak_rss_mb"] >= memory["peak_rss_pipeline_mb"] >= memory["rss_after_load_mb"] * 0.99
    assert 0.0 <= report["idle_cpu_percent"] <= 100.0 * (report["machine"]["cores"] or 1)

    naive = report["naive"]
    assert naive["latency_ms"]["median"] > 800  # its fixed silence wait alone is 0.8 s
    assert naive["ratio_median"] == pytest.approx(naive["latency_ms"]["median"] / latency["median"], rel=0.01)
    assert set(report["threads"]) == {"asr", "llm", "tts"}

    assert "voice-to-voice latency: median" in stdout
    assert "naive turn-based baseline" in stdout


@pytest.mark.models
def test_quick_run_draws_the_waterfall_or_says_how(
    quick: tuple[dict[str, Any], str, Path],
) -> None:
    _, stdout, plot = quick
    if importlib.util.find_spec("matplotlib") is None:
        assert "pip install matplotlib" in stdout
    else:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_shares_without_a_head_start_are_the_stages_in_a_row() -> None:
    stages = {
        "endpoint": 500.0,
        "asr": 300.0,
        "llm_first_token": 100.0,
        "first_sentence": 250.0,
        "tts_first_chunk": 80.0,
    }
    shares = bench.shares(1200.0, stages, head_start_ms=100.0)
    assert shares == {
        "endpoint": 500.0, "asr": 300.0, "llm_first_token": 100.0, "first_clause": 150.0,
        "tts_first_chunk": 80.0, "output": 70.0,
    }  # fmt: skip


def test_shares_with_a_head_start_count_only_what_the_endpoint_wait_does_not_hide() -> None:
    stages = {"endpoint": 500.0, "head_start": 1.0, "asr": 300.0, "llm_first_token": 100.0,
              "first_sentence": 250.0, "tts_first_chunk": 80.0}  # fmt: skip
    # Work starts at 100 ms: ASR ends at 400 (hidden), first token at 500 (hidden), first
    # clause at 650, first chunk at 730; the reply is heard at 760.
    shares = bench.shares(760.0, stages, head_start_ms=100.0)
    assert shares["endpoint"] == 500.0
    assert shares["asr"] == 0.0 and shares["llm_first_token"] == 0.0
    assert shares["first_clause"] == 150.0 and shares["tts_first_chunk"] == 80.0
    assert shares["output"] == 30.0
    # All the work hidden: the endpoint decision is the whole critical path.
    quick = bench.shares(520.0, {**stages, "asr": 50.0, "first_sentence": 120.0}, head_start_ms=100.0)
    assert quick["endpoint"] == 500.0 and quick["output"] == 20.0
    assert sum(quick.values()) == pytest.approx(520.0)


def test_the_reference_comes_from_a_txt_beside_the_audio_or_the_manifest(
    tmp_path: Path,
) -> None:
    known = bench.manifest()
    assert bench.reference_for(ROOT / "tests" / "data" / "goforward.wav", known) == "go forward ten meters"
    audio = tmp_path / "question.wav"
    audio.touch()
    assert bench.reference_for(audio, known) is None
    (tmp_path / "question.txt").write_text("What's up?\n", encoding="utf-8")
    assert bench.reference_for(audio, known) == "What's up?"


def test_wer_normalizes_case_punctuation_and_numbers() -> None:
    assert bench.wer(["go forward ten meters"], ["Go forward 10 meters."]) == 0.0
    assert bench.wer(["what's the date today"], ["What is the date today?"]) == 0.0
    assert bench.wer(["turn on the lamp"], [""]) == 1.0
    assert bench.wer([], []) is None
