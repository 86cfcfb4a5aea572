"""``scripts/double_talk_bench.py``: a quick run reports every figure, and they add up.

A measurement: nothing here checks a detection-time target, only that the report is whole and
physically plausible, and that a bad ``--set`` is one clear line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "double_talk_bench.py"


@pytest.mark.models
def test_a_quick_run_reports_detection_and_false_onsets(tmp_path: Path) -> None:
    report_path = tmp_path / "dt.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(report_path), "--audio-cache", str(tmp_path / "audio")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["echo_only_replies"] == 6
    assert report["false_onsets"] == len(report["false_onset_at"])
    assert report["trials"] == report["detected"] + report["early"] + report["missed"] > 0
    assert report["detected"] > 0 and 0 < report["detect_ms_median"] <= report["detect_ms_p95"] < 1000
    assert len(list((tmp_path / "audio").glob("paragraph-*.wav"))) == 2
    assert "false onsets" in proc.stdout and "us per 10 ms frame" in proc.stdout


@pytest.mark.parametrize(("setting", "says"), [("no_such=1", "not a number or true/false field of DoubleTalkConfig"), ("predictor=maybe", "give predictor=true or predictor=false")])
def test_a_bad_setting_is_one_clear_line(setting: str, says: str) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--set", setting], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert says in proc.stderr and "Traceback" not in proc.stderr
