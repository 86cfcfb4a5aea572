"""Answers per model tier: the spoken QA set of ``scripts/qa_set.py`` replayed through the live
pipeline with each language model, and what each answer costs.

::

    .venv/bin/python scripts/bench.py --qa [--tiers T1,T2,...] [--quick] [--fast] [--audio-cache DIR]
                                     [--json FILE] [--plot FILE.png|FILE.svg] [--out-dir DIR]
    .venv/bin/python scripts/bench.py --replot FILE.json [--plot FILE.png|FILE.svg]

A tier is a tier name (``smollm2-135m``, ``qwen2.5-coder-0.5b``, ``qwen2.5-coder-1.5b``: the
model registry finds its installed file), a GGUF path (named after the file), or
``NAME=PATH``. Default: the three tiers; one that is not installed is reported as such and
skipped (``--llm-model X`` alone means ``--tiers X``). ``--quick``: the first tier only, four
questions and one short memory check.

The questions are synthesized once, before any tier runs (half by the bundled Piper voice,
half by espeak-ng), so every tier hears the very same audio (``--audio-cache DIR`` keeps it
for later runs too: Piper's voice varies run to run, and so does what the recognizer hears).
Each tier then runs in its own process (``--child``), so its peak resident memory
(``ru_maxrss``) is its own, and loads its engines once:

1. the language model alone: six open prompts with the spoken system prompt, streamed to
   the end; first-token time (the prompt read included) and decoding speed in tokens/s (the
   model's own tokenizer counts the reply), medians over the prompts. Measured twice, before
   the replays and after them; the table gives the better window of each figure (other work
   on a shared machine only ever slows a window down) and, beside the engine's first token,
   the median ``llm_first_token`` stage of the pipeline's own turns;
2. every question as its own paced session (``run_replay(..., fast=False)``, 1 s of room tone
   before, ``--pad-after`` after; the replay runs on until the reply has played): what was
   heard, what was said, and the voice-to-voice latency from the turn log (end of the user's
   voice to the reply's first audible sample on the replay timeline) with its critical-path
   shares (``bench.shares``);
3. every memory check as a conversation: each turn its own paced session that goes on from
   the exchanges before it (``history=``), so a long reply can never be cut by the next turn.

Scoring (``is_right``, ``is_parroted``): a reply is right when any accepted answer matches it
as whole words after normalisation (lowercase, punctuation gone, number words read as digits);
it is parroted when its words are nearly the question's (``difflib`` ratio >= 0.8 against what
was asked or what was heard) and it holds no accepted answer. The turn log's ``parroted``
field (clauses the parrot guard left unsaid) is counted too: the table's "1/68+2g" is one
parroted reply of 68, and 2 turns where the guard dropped something. The latency figures
cover every turn: questions and memory-check turns. "heard ok" is the share of questions the
recognizer got word for word; "acc. heard ok" the accuracy on those alone.

With ``--fast`` the sessions run on the simulated clock: the answers are the same kind, the
latencies are not wall-clock figures (for working on the QA set, not for the table).

This is a measurement: it never fails on a figure. The exit code is 1 only when a tier's run
crashed (a tier not installed is reported and skipped).
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import soundfile as sf


def _sibling(name: str) -> ModuleType:
    """Another file of scripts/ as a module (scripts/ is not a package); loaded once."""
    key = f"voxloop_scripts_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


bench = _sibling("bench")
qa_set = _sibling("qa_set")

DEFAULT_TIERS = ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
PARROT_RATIO = 0.8
"""A reply whose words match the question's this closely (difflib) is parroted."""
NOT_INSTALLED = 3
"""Exit code of a tier's run when its model file is missing or unusable."""
SPEED_PROMPTS = [
    "Tell me about the moon.",
    "How do airplanes stay in the air?",
    "What is a good breakfast before a long walk?",
    "Why do cats purr?",
    "How does a rainbow form?",
    "What should I pack for a weekend at the beach?",
]
"""Open prompts with replies of a few sentences, for the model's own speed."""


# --- scoring ------------------------------------------------------------------------------

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9,
}  # fmt: skip
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}


def _number_words_to_digits(words: list[str]) -> list[str]:
    """ "two hundred and six" -> "206", "a hundred" -> "100", "nineteen forty five" -> "19 45"
    (a year said in pairs stays two numbers, and is accepted as such); other words unchanged."""
    out: list[str] = []
    total = current = 0
    last = ""  # the kind of the previous number word: unit, teen, tens, hundred, scale, or ""
    pending_and = False

    def flush() -> None:
        nonlocal total, current, last, pending_and
        if last:
            out.append(str(total + current))
        if pending_and:
            out.append("and")
        total = current = 0
        last = ""
        pending_and = False

    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w == "a" and nxt in ("hundred", *_SCALES) and not last:
            flush()
            current, last = 1, "unit"
            continue
        if w == "and" and last in ("hundred", "scale") and (nxt in _UNITS or nxt in _TEENS or nxt in _TENS):
            pending_and = True
            continue
        if w in _UNITS or w in _TEENS:
            value = _UNITS.get(w, _TEENS.get(w, 0))
            kind = "unit" if w in _UNITS else "teen"
            if last in ("unit", "teen") or (last == "tens" and (kind == "teen" or current % 10)):
                flush()
            pending_and = False
            current += value
            last = kind
        elif w in _TENS:
            if last in ("unit", "teen", "tens"):
                flush()
            pending_and = False
            current += _TENS[w]
            last = "tens"
        elif w == "hundred" and last in ("unit", "teen", "tens") and 0 < current < 100:
            current *= 100
            last = "hundred"
        elif w in _SCALES and last in ("unit", "teen", "tens", "hundred"):
            total += current * _SCALES[w]
            current = 0
            last = "scale"
        else:
            flush()
            out.append(w)
    flush()
    return out


def normalize_answer(text: str) -> str:
    """Lowercase words without punctuation, numbers as digits ("Eight." and "8" are "8")."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    text = re.sub(r"['’]s\b", "", text)  # shakespeare's -> shakespeare
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return " ".join(_number_words_to_digits(text.split()))


def _answer_pattern(answer: str) -> re.Pattern[str]:
    if answer.startswith("re:"):
        return re.compile(answer[3:])
    words = normalize_answer(answer)
    return re.compile(rf"(?<!\S){re.escape(words)}(?:s|es)?(?!\S)")


def is_right(reply: str, answers: Iterable[str]) -> bool:
    """Any accepted answer found, as whole words, in the normalised reply."""
    said = normalize_answer(reply)
    return any(_answer_pattern(a).search(said) for a in answers)


def parrot_ratio(question: str, reply: str) -> float:
    """How nearly the reply's words are the question's (difflib's ratio on word lists)."""
    q, r = normalize_answer(question).split(), normalize_answer(reply).split()
    if not q or not r:
        return 0.0
    return round(difflib.SequenceMatcher(None, q, r, autojunk=False).ratio(), 3)


def is_parroted(reply: str, *questions: str, answers: Iterable[str] = ()) -> bool:
    """The reply is (nearly) the question's words (what was asked, or what was heard) and not
    an answer: "Mars is known as the red planet." restates the question around its answer."""
    if not reply or is_right(reply, answers):
        return False
    return any(parrot_ratio(q, reply) >= PARROT_RATIO for q in questions if q)


def guard_dropped(turn_json: dict[str, Any]) -> Any:
    """What the turn log's parrot guard dropped on this turn (its ``parroted`` field: how many
    clauses went unsaid), or None when it dropped nothing or the log has no such field."""
    value = turn_json.get("parroted")
    return value or None


# --- tiers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierSpec:
    name: str
    model: str
    """What goes into ``[models] llm``: the tier's name or a GGUF path."""


def parse_tiers(text: str | None) -> list[TierSpec]:
    """ "a,b=/x.gguf,/y.gguf" -> tier a by name, b at /x.gguf, and "y" at /y.gguf."""
    specs = []
    for item in (text or ",".join(DEFAULT_TIERS)).split(","):
        item = item.strip()
        if not item:
            continue
        if "=" in item:
            name, model = item.split("=", 1)
            specs.append(TierSpec(name.strip(), model.strip()))
        elif item.endswith(".gguf") or os.sep in item:
            specs.append(TierSpec(Path(item).stem, item))
        else:
            specs.append(TierSpec(item, item))
    return specs


# --- the inputs (made once, in the parent) ------------------------------------------------


def plan(quick: bool) -> dict[str, Any]:
    """Which questions and memory checks this run asks."""
    questions = qa_set.QUESTIONS
    checks = qa_set.MEMORY_CHECKS
    if quick:
        questions = [q for q in questions if q.id in qa_set.QUICK_QUESTIONS]
        check = next(c for c in checks if c.id == qa_set.QUICK_MEMORY)
        checks = [type(check)(check.id, (check.turns[0], *check.turns[2:]), check.answers, check.voice)]
    return {"questions": questions, "memory": checks}


def synthesize(asked: dict[str, Any], config: Any, work: Path, cache: Path | None = None) -> dict[str, Any]:
    """Every utterance as a 16 kHz wav; the manifest the tiers' runs read. With ``cache``, the
    wavs are kept there and reused by later runs (Piper's voice varies run to run: compare
    runs on the same audio); a question whose text or voice changed is synthesized again."""
    audio_dir = cache or work / "questions"
    audio_dir.mkdir(parents=True, exist_ok=True)
    engines = SimpleNamespace(tts=None)

    def say(text: str, voice: str, name: str) -> str | None:
        digest = hashlib.sha256(f"{voice}\n{text}".encode()).hexdigest()[:10]
        path = audio_dir / f"{name}-{voice}-{digest}.wav"
        if path.exists():
            return str(path)
        if engines.tts is None:
            from voxloop.models import registry
            from voxloop.pipeline.engines import make_tts

            engines.tts = make_tts(config, registry.resolve_voice(config.models.voice))
        made = bench.synthesized(engines, [(text, voice)], work)
        if not made:
            return None  # espeak-ng missing: said so already
        sf.write(path, np.clip(made[0].audio, -1, 1), bench.RATE, subtype="PCM_16")
        return str(path)

    questions = []
    for q in asked["questions"]:
        wav = say(q.question, q.voice, q.id)
        if wav is not None:
            questions.append({"id": q.id, "topic": q.topic, "voice": q.voice, "question": q.question,
                              "answers": list(q.answers), "wav": wav})  # fmt: skip
    memory = []
    for check in asked["memory"]:
        wavs = [say(text, check.voice, f"memory-{check.id}-{i + 1}") for i, text in enumerate(check.turns)]
        if all(wavs):
            memory.append({"id": check.id, "voice": check.voice, "turns": list(check.turns),
                           "answers": list(check.answers), "wavs": wavs})  # fmt: skip
    return {"questions": questions, "memory": memory}


# --- one tier (in its own process) --------------------------------------------------------


def llm_speed(llm: Any, system_prompt: str, prompts: Sequence[str], max_tokens: int) -> dict[str, Any]:
    """First-token time (the prompt read included; the system prompt is read once before, and
    stays in llama.cpp's cache, as in a conversation) and decoding speed (tokens after
    the first over the time after it) of the engine alone, over ``prompts``."""
    tokenize = getattr(getattr(llm, "model", None), "tokenize", None)
    # The system prompt read once first, as the conversation's first turn would have done.
    for _ in llm.stream([{"role": "system", "content": system_prompt}, {"role": "user", "content": "Hello."}], 1):
        pass
    runs = []
    for text in prompts:
        messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": text}]
        started = time.perf_counter()
        first: float | None = None
        deltas: list[str] = []
        for delta in llm.stream(messages, max_tokens):
            if not isinstance(delta, str):
                continue
            if first is None:
                first = time.perf_counter()
            deltas.append(delta)
        ended = time.perf_counter()
        reply = "".join(deltas)
        tokens = len(tokenize(reply.encode(), add_bos=False, special=False)) if tokenize and reply else len(deltas)
        runs.append({
            "prompt": text,
            "first_token_ms": None if first is None else round((first - started) * 1000, 1),
            "tokens": tokens,
            "deltas": len(deltas),
            "decode_s": 0.0 if first is None else round(ended - first, 3),
            "tokens_per_s": None if first is None or ended <= first else round((tokens - 1) / (ended - first), 1),
            "reply": reply,
        })  # fmt: skip
    timed = [r for r in runs if r["tokens_per_s"] is not None]
    decode_s = sum(r["decode_s"] for r in timed)
    return {
        # Medians over the prompts: one prompt slowed by other work on the machine moves them least.
        "first_token_ms": _median([r["first_token_ms"] for r in runs if r["first_token_ms"] is not None]),
        "tokens_per_s": _median([r["tokens_per_s"] for r in timed]),
        "tokens_per_s_overall": round(sum(r["tokens"] - 1 for r in timed) / decode_s, 1) if decode_s > 0 else None,
        "deltas_per_s_overall": round(sum(r["deltas"] - 1 for r in timed) / decode_s, 1) if decode_s > 0 else None,
        "max_tokens": max_tokens,
        "load_1m": round(os.getloadavg()[0], 2),
        "runs": runs,
    }


def best_window(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """The model's speed from two windows (before and after the replays): for each figure the
    better one, since other work on the machine slows a window down and never speeds one up."""
    firsts = [w["first_token_ms"] for w in windows if w["first_token_ms"] is not None]
    rates = [w["tokens_per_s"] for w in windows if w["tokens_per_s"] is not None]
    return {
        "first_token_ms": min(firsts) if firsts else None,
        "tokens_per_s": max(rates) if rates else None,
        "windows": windows,
    }


def _median(values: list[float]) -> float | None:
    return round(float(statistics.median(values)), 1) if values else None


def _turn_json(record: Any, head_start_ms: float) -> dict[str, Any]:
    data = record.to_json()
    return {
        "user_text": record.user_text,
        "assistant_text": record.assistant_text,
        "latency_ms": data["latency_ms"],
        "stages": data["stages"],
        "shares": bench.shares(record.latency_ms, record.stages, head_start_ms),
        "interrupted": record.interrupted,
        "error": record.error,
        "guard": guard_dropped(data),
    }


class TierRun:
    """One tier's engines and what it answered."""

    def __init__(self, args: argparse.Namespace, engines: Any, config: Any, work: Path) -> None:
        self.args = args
        self.engines = engines
        self.config = config
        self.work = work
        self.rng = np.random.default_rng(7)  # the same room tone for every tier
        self.head_start_ms = bench.speculate_ms()
        self.sessions = 0

    def say(self, wav: str, name: str, history: Sequence[Any] = ()) -> tuple[list[dict[str, Any]], list[Any], float]:
        """One paced session of ``wav``, going on from ``history``: its turns, its exchanges,
        and the load average when it started."""
        from voxloop.pipeline.replay import run_replay

        load_1m = round(os.getloadavg()[0], 2)
        audio = bench.read_16k(Path(wav))
        path = bench.padded(bench.Input(name, "qa", audio, None), 1.0, self.args.pad_after, self.work, self.rng)
        exchanges: list[Any] = []
        self.sessions += 1
        result = run_replay(
            path, self.work / f"{self.sessions:03d}-{name}.voxloop", self.engines, self.config,
            fast=self.args.fast, history=list(history), on_exchange=exchanges.append, state_dir=self.work / "state",
        )  # fmt: skip
        return [_turn_json(t, self.head_start_ms) for t in result.turns], exchanges, load_1m

    def question(self, q: dict[str, Any]) -> dict[str, Any]:
        turns, _, load_1m = self.say(q["wav"], q["id"])
        heard = " ".join(t["user_text"] for t in turns if t["user_text"])
        reply = " ".join(t["assistant_text"] for t in turns if t["assistant_text"])
        return {
            "id": q["id"], "topic": q["topic"], "voice": q["voice"], "question": q["question"],
            "answers": q["answers"], "heard": heard, "heard_wer": _wer(q["question"], heard), "reply": reply,
            "right": is_right(reply, q["answers"]),
            "parrot_ratio": max(parrot_ratio(q["question"], reply), parrot_ratio(heard, reply)),
            "parroted": is_parroted(reply, q["question"], heard, answers=q["answers"]),
            "guard": [t["guard"] for t in turns if t["guard"]], "turns": turns, "load_1m": load_1m,
        }  # fmt: skip

    def memory(self, check: dict[str, Any]) -> dict[str, Any]:
        history: list[Any] = []
        said = []
        for i, (text, wav) in enumerate(zip(check["turns"], check["wavs"])):
            turns, exchanges, load_1m = self.say(wav, f"memory-{check['id']}-{i + 1}", history)
            history += exchanges
            heard = " ".join(t["user_text"] for t in turns if t["user_text"])
            reply = " ".join(t["assistant_text"] for t in turns if t["assistant_text"])
            said.append({
                "text": text, "heard": heard, "heard_wer": _wer(text, heard), "reply": reply,
                "parroted": is_parroted(reply, text, heard, answers=check["answers"] if i == len(check["turns"]) - 1 else ()),
                "guard": [t["guard"] for t in turns if t["guard"]], "turns": turns, "load_1m": load_1m,
            })  # fmt: skip
        last = said[-1]["reply"]
        return {"id": check["id"], "voice": check["voice"], "answers": check["answers"],
                "passed": is_right(last, check["answers"]), "turns": said}  # fmt: skip


def _wer(reference: str, heard: str) -> float | None:
    try:
        return bench.wer([reference], [heard])
    except ImportError:  # jiwer is a test extra
        return None


def _pct(right: int, n: int) -> float | None:
    return None if n == 0 else round(100.0 * right / n, 1)


def tier_figures(questions: list[dict[str, Any]], memory: list[dict[str, Any]]) -> dict[str, Any]:
    """The tier's summary from its answers."""
    by_voice = {v: [q for q in questions if q["voice"] == v] for v in ("piper", "espeak")}
    heard_ok = [q for q in questions if q["heard_wer"] == 0.0]
    replies = [(q["parroted"], q["guard"]) for q in questions] + [(t["parroted"], t["guard"]) for m in memory for t in m["turns"]]
    turns = [t for q in questions for t in q["turns"]] + [t for m in memory for s in m["turns"] for t in s["turns"]]
    latencies = [t["latency_ms"] for t in turns if t["latency_ms"] is not None]
    return {
        "accuracy": {
            **{v: _pct(sum(q["right"] for q in qs), len(qs)) for v, qs in by_voice.items()},
            "all": _pct(sum(q["right"] for q in questions), len(questions)),
            "right": sum(q["right"] for q in questions),
            "n": len(questions),
            "n_piper": len(by_voice["piper"]),
            "n_espeak": len(by_voice["espeak"]),
            "heard_right": _pct(len(heard_ok), len(questions)),
            "when_heard_right": _pct(sum(q["right"] for q in heard_ok), len(heard_ok)),
        },
        "memory": {"passed": sum(m["passed"] for m in memory), "n": len(memory)},
        "parroted": {
            "replies": len(replies),
            "parroted": sum(p for p, _ in replies),
            "guard": sum(bool(g) for _, g in replies),
        },
        "latency_ms": bench.summary(latencies),
        "turns": len(turns),
        "share_median_ms": {
            k: round(float(np.median(v)), 1) for k in bench.SHARES if (v := [t["shares"][k] for t in turns if k in t["shares"]])
        },
        "stage_median_ms": {
            k: round(float(np.median([t["stages"][k] for t in turns if k in t.get("stages", {})])), 1)
            for k in sorted({k for t in turns for k in t.get("stages", {})})
        },
    }


def child_main(args: argparse.Namespace) -> int:
    """One tier: load, measure, answer, write ``args.result``."""
    import logging

    from voxloop.models.errors import ModelFileError
    from voxloop.pipeline.config import Config, load_config
    from voxloop.pipeline.engines import check_models, load_engines

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    load_before = [round(x, 2) for x in os.getloadavg()]
    manifest = json.loads(Path(args.manifest).read_text(encoding="utf-8"))
    result_path = Path(args.result)
    config = load_config(args.config) if args.config else Config()
    config.assistant.commands = args.commands
    config.models.llm = args.model
    try:
        models = check_models(config)
    except ModelFileError as e:
        result_path.write_text(json.dumps({"tier": args.child, "model": args.model, "status": "not installed", "error": str(e)}) + "\n")
        print(f"{args.child}: {e}")
        return NOT_INSTALLED
    started = time.perf_counter()
    engines = load_engines(config, models)
    load_s = time.perf_counter() - started
    rss_loaded = bench.rss_mb()
    print(f"{args.child}: {models.llm_path}; engines loaded and warmed in {load_s:.1f} s, RSS {rss_loaded:.0f} MB", flush=True)

    prompts = SPEED_PROMPTS[:2] if args.quick else SPEED_PROMPTS

    def speed_window(when: str) -> dict[str, Any]:
        speed = llm_speed(engines.llm, config.dialog.system_prompt, prompts, config.dialog.max_reply_tokens)
        print(f"{args.child}: the model alone {when}: first token {bench.fmt(speed['first_token_ms'])} ms, "
              f"{bench.fmt(speed['tokens_per_s'], 1)} tokens/s; load {speed['load_1m']}", flush=True)  # fmt: skip
        return speed

    windows = [speed_window("before the replays")]

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    run = TierRun(args, engines, config, work)
    wall0 = time.perf_counter()
    questions = []
    for n, q in enumerate(manifest["questions"], 1):
        row = run.question(q)
        questions.append(row)
        mark = "right" if row["right"] else ("PARROTED" if row["parroted"] else "wrong")
        lat = ", ".join(bench.fmt(t["latency_ms"]) for t in row["turns"]) or "no turn"
        print(f"  [{n}/{len(manifest['questions'])}] {q['id']} ({q['voice']}): heard {row['heard']!r}; "
              f"said {row['reply'][:90]!r}: {mark}; {lat} ms; load {row['load_1m']}", flush=True)  # fmt: skip
    memory = []
    for check in manifest["memory"]:
        row = run.memory(check)
        memory.append(row)
        print(f"  memory {check['id']}: {'passed' if row['passed'] else 'failed'}: "
              + " | ".join(f"{t['heard']!r} -> {t['reply'][:60]!r}" for t in row["turns"]), flush=True)  # fmt: skip
    wall = time.perf_counter() - wall0
    windows.append(speed_window("after the replays"))

    report = {
        "tier": args.child,
        "model": args.model,
        "status": "ok",
        "llm_path": str(models.llm_path),
        "fast": args.fast,
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "load_ms": {k: round(v) for k, v in engines.load_ms.items()},
        "llm": best_window(windows),
        **tier_figures(questions, memory),
        "memory_mb": {"rss_after_load": round(rss_loaded, 1), "peak": round(bench.peak_rss_mb(), 1)},
        "replay_wall_s": round(wall, 1),
        "questions": questions,
        "memory_checks": memory,
    }
    result_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


# --- all tiers (the parent) ---------------------------------------------------------------


def run_tier(spec: TierSpec, manifest: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """``spec`` in a process of its own; its report (or why there is none)."""
    result = work / f"tier-{re.sub(r'[^A-Za-z0-9_.-]+', '_', spec.name)}.json"
    result.unlink(missing_ok=True)
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--child", spec.name, "--model", spec.model,
        "--manifest", str(manifest), "--result", str(result), "--work", str(work / f"replays-{result.stem}"),
        "--pad-after", str(args.pad_after),
    ]  # fmt: skip
    cmd += ["--quick"] * bool(args.quick) + ["--fast"] * bool(args.fast) + ["--commands"] * bool(args.commands)
    cmd += ["--verbose"] * bool(args.verbose) + (["--config", str(args.config)] if args.config else [])
    started = time.perf_counter()
    proc = subprocess.run(cmd, check=False)
    wall = round(time.perf_counter() - started, 1)
    if result.exists():
        report: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
        report["wall_s"] = wall
        if proc.returncode not in (0, NOT_INSTALLED):
            report["status"] = f"crashed (exit code {proc.returncode})"
        return report
    return {"tier": spec.name, "model": spec.model, "status": f"crashed (exit code {proc.returncode})", "wall_s": wall}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from voxloop.pipeline.config import Config, load_config

    load_before = [round(x, 2) for x in os.getloadavg()]
    specs = parse_tiers(args.tiers or getattr(args, "llm_model", None))
    if args.quick:
        specs = specs[:1]
    if args.pad_after is None:
        args.pad_after = 1.5
    config = load_config(args.config) if args.config else Config()
    asked = plan(args.quick)
    with tempfile.TemporaryDirectory(prefix="voxloop-qa-") as tmp:
        work = Path(args.out_dir) if args.out_dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        manifest = synthesize(asked, config, work, getattr(args, "audio_cache", None))
        manifest_path = work / "manifest.json"
        manifest_path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        print(f"{len(manifest['questions'])} questions and {len(manifest['memory'])} memory checks synthesized "
              f"in {time.perf_counter() - started:.1f} s; tiers: {', '.join(s.name for s in specs)}", flush=True)  # fmt: skip
        tiers = []
        for spec in specs:
            print(f"\n--- {spec.name} ({spec.model}); load average {[round(x, 2) for x in os.getloadavg()]}", flush=True)
            tiers.append(run_tier(spec, manifest_path, args, work))
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": bench.machine(),
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "qa_set": {
            "questions": len(manifest["questions"]),
            "piper": sum(q["voice"] == "piper" for q in manifest["questions"]),
            "espeak": sum(q["voice"] == "espeak" for q in manifest["questions"]),
            "memory_checks": len(manifest["memory"]),
        },
        "quick": bool(args.quick),
        "fast": bool(args.fast),
        "pad_after_s": args.pad_after,
        "commands": bool(args.commands),
        "tiers": tiers,
    }


# --- report -------------------------------------------------------------------------------


def _acc(a: dict[str, Any]) -> str:
    return f"{bench.fmt(a['piper'])} / {bench.fmt(a['espeak'])} / {bench.fmt(a['all'])}"


def print_table(report: dict[str, Any]) -> None:
    fmt = bench.fmt
    tiers = report["tiers"]
    ok = [t for t in tiers if t.get("status") == "ok"]
    s = report["qa_set"]
    simulated = " on the SIMULATED clock: latencies are not wall-clock" if report["fast"] else ""
    print(f"\nAnswers per model tier ({s['questions']} questions: {s['piper']} Piper, {s['espeak']} espeak-ng; "
          f"{s['memory_checks']} memory checks){simulated}")  # fmt: skip
    head = (f"{'tier':20} {'accuracy % piper/espeak/all':>27} {'heard ok %':>10} {'acc. heard ok':>13} {'memory':>6} "
            f"{'parroted':>9} {'latency med/p95 ms':>18} {'tokens/s':>8} {'1st tok ms eng/pipe':>19} {'peak RSS MB':>11}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for t in tiers:
        if t.get("status") != "ok":
            print(f"{t['tier']:20} {t.get('status')}: {t.get('error', '')}")
            continue
        a, p, lat = t["accuracy"], t["parroted"], t["latency_ms"]
        parroted = f"{p['parroted']}/{p['replies']}" + (f"+{p['guard']}g" if p["guard"] else "")
        memory = f"{t['memory']['passed']}/{t['memory']['n']}"
        latency = f"{fmt(lat['median'])} / {fmt(lat['p95'])}"
        first_token = f"{fmt(t['llm']['first_token_ms'])} / {fmt(t.get('stage_median_ms', {}).get('llm_first_token'))}"
        print(f"{t['tier'][:20]:20} {_acc(a):>27} {fmt(a['heard_right']):>10} {fmt(a['when_heard_right']):>13} {memory:>6} "
              f"{parroted:>9} {latency:>18} {fmt(t['llm']['tokens_per_s']):>8} "
              f"{first_token:>19} {fmt(t['memory_mb']['peak']):>11}")  # fmt: skip
    if not ok:
        return
    print("\nCritical-path shares of the voice-to-voice latency, medians over every turn (ms)")
    head = f"{'tier':20} {'turns':>5} " + " ".join(f"{bench.SHORT[k]:>11}" for k in bench.SHARES) + f" {'load 1m':>14}"
    print(head)
    print("-" * len(head))
    for t in ok:
        load = f"{t['load_average']['before'][0]}-{t['load_average']['after'][0]}"
        shares = " ".join(f"{fmt(t['share_median_ms'].get(k)):>11}" for k in bench.SHARES)
        print(f"{t['tier'][:20]:20} {t['turns']:>5} {shares} {load:>14}")
    print("\nPer question (+ right, - wrong, P parroted, . nothing said); what the recognizer heard when it was not the question")
    first = ok[0]
    print(f"{'question':16} {'voice':6} " + " ".join(f"{t['tier'][:12]:>12}" for t in ok) + "  heard")
    for i, q in enumerate(first["questions"]):
        marks = []
        for t in ok:
            row = t["questions"][i] if i < len(t["questions"]) else None
            marks.append("?" if row is None else "P" if row["parroted"] else "+" if row["right"] else "-" if row["reply"] else ".")
        heard = "" if q["heard_wer"] == 0.0 else f"{q['heard']!r} (asked {q['question']!r})"
        print(f"{q['id']:16} {q['voice']:6} " + " ".join(f"{m:>12}" for m in marks) + f"  {heard}")
    for i, m in enumerate(first["memory_checks"]):
        marks = ["+" if t["memory_checks"][i]["passed"] else "-" for t in ok if i < len(t["memory_checks"])]
        print(f"{'memory-' + m['id']:16} {m['voice']:6} " + " ".join(f"{x:>12}" for x in marks))
    for t in ok:
        lb, la = t["load_average"]["before"], t["load_average"]["after"]
        print(f"{t['tier']}: load average {lb} before, {la} after; replays {t['replay_wall_s']} s")
    busiest = max([report["load_average"]["before"][0], report["load_average"]["after"][0]]
                  + [max(t["load_average"]["before"][0], t["load_average"]["after"][0]) for t in ok])  # fmt: skip
    if busiest > 1.0:
        print("NOTE: the machine was busy with other work (1-minute load above 1.0); the latencies and speeds "
              "include that contention. Re-run when it is idle.")  # fmt: skip


# --- plot ---------------------------------------------------------------------------------


def _points(report: dict[str, Any]) -> list[tuple[str, float, float, float]]:
    """(tier, accuracy %, median ms, p95 ms) of every tier that has them."""
    return [
        (t["tier"], t["accuracy"]["all"], t["latency_ms"]["median"], t["latency_ms"]["p95"])
        for t in report["tiers"]
        if t.get("status") == "ok" and t["accuracy"]["all"] is not None and t["latency_ms"]["median"] is not None
    ]


def _title(report: dict[str, Any]) -> str:
    s = report["qa_set"]
    return f"voice-to-voice latency against answer accuracy ({s['questions']} spoken questions)"


def plot_svg(report: dict[str, Any], path: Path) -> None:
    """The plot as a hand-written SVG: no dependency."""
    points = _points(report)
    w, h, left, right, top, bottom = 640, 420, 70, 30, 50, 60
    y_max = max([500.0] + [p95 for *_, p95 in points]) * 1.15
    x0, x1 = 0.0, 100.0

    def X(acc: float) -> float:
        return left + (acc - x0) / (x1 - x0) * (w - left - right)

    def Y(ms: float) -> float:
        return h - bottom - ms / y_max * (h - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
           'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="24" text-anchor="middle" font-size="14">{_title(report)}</text>']  # fmt: skip
    step = 100 if y_max <= 1200 else 250 if y_max <= 3000 else 1000
    for ms in range(0, int(y_max) + 1, step):
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{Y(ms):.1f}" y2="{Y(ms):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6}" y="{Y(ms) + 4:.1f}" text-anchor="end">{ms}</text>')
    for acc in range(0, 101, 10):
        out.append(f'<line x1="{X(acc):.1f}" x2="{X(acc):.1f}" y1="{top}" y2="{h - bottom}" stroke="#f0f0f0"/>')
        out.append(f'<text x="{X(acc):.1f}" y="{h - bottom + 16}" text-anchor="middle">{acc}</text>')
    out.append(f'<line x1="{left}" x2="{w - right}" y1="{Y(500):.1f}" y2="{Y(500):.1f}" stroke="black" stroke-dasharray="3,3"/>')
    out.append(f'<text x="{w - right - 4}" y="{Y(500) - 4:.1f}" text-anchor="end">500 ms</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" fill="none" stroke="black"/>')
    out.append(f'<text x="{(left + w - right) / 2}" y="{h - 18}" text-anchor="middle">answers right (%, all questions)</text>')
    out.append(f'<text transform="translate(18,{(top + h - bottom) / 2}) rotate(-90)" text-anchor="middle">'
               "voice-to-voice latency (ms): median, whisker to p95</text>")  # fmt: skip
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"]
    for i, (name, acc, med, p95) in enumerate(points):
        c = colors[i % len(colors)]
        x = X(acc)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{Y(med):.1f}" y2="{Y(p95):.1f}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<line x1="{x - 6:.1f}" x2="{x + 6:.1f}" y1="{Y(p95):.1f}" y2="{Y(p95):.1f}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<circle cx="{x:.1f}" cy="{Y(med):.1f}" r="5" fill="{c}"/>')
        # Labels to the right of a point in the left half, to its left in the right half.
        dx, anchor = (9, "start") if x < (left + w - right) / 2 else (-9, "end")
        out.append(f'<text x="{x + dx:.1f}" y="{Y(med) + 4:.1f}" text-anchor="{anchor}" fill="{c}">'
                   f"{name} ({med:.0f} / {p95:.0f} ms, {acc:.0f} %)</text>")  # fmt: skip
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def plot(report: dict[str, Any], path: Path) -> None:
    """FILE.svg: drawn by hand; FILE.png: with matplotlib, or an SVG beside it without."""
    if path.suffix.lower() == ".svg":
        plot_svg(report, path)
        print(f"plot: {path}")
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        svg = path.with_suffix(".svg")
        plot_svg(report, svg)
        print(f"--plot {path}: matplotlib is not installed (pip install matplotlib); drew {svg} instead")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, acc, med, p95 in _points(report):
        ax.errorbar([acc], [med], yerr=[[0], [p95 - med]], fmt="o", capsize=5, label=f"{name} ({med:.0f} / {p95:.0f} ms)")
        right_half = acc > 50
        ax.annotate(name, (acc, med), textcoords="offset points", xytext=(-8 if right_half else 8, -4),
                    ha="right" if right_half else "left", fontsize=8)  # fmt: skip
    ax.axhline(500, color="black", linestyle=":", linewidth=1)
    ax.annotate("500 ms", (99, 500), textcoords="offset points", xytext=(0, 4), ha="right", fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("answers right (%, all questions)")
    ax.set_ylabel("voice-to-voice latency (ms): median, whisker to p95")
    ax.set_title(_title(report), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"plot: {path}")


# --- entry points -------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    """From ``bench.py --qa`` / ``--tiers`` / ``--replot``."""
    if args.replot:
        report = json.loads(Path(args.replot).read_text(encoding="utf-8"))
    else:
        report = run(args)
    print_table(report)
    if args.json and not args.replot:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"json: {args.json}")
    if args.plot:
        plot(report, args.plot)
    crashed = [t["tier"] for t in report["tiers"] if str(t.get("status", "")).startswith("crashed")]
    return 1 if crashed else 0


def _child_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="one tier of the QA benchmark (run by scripts/bench.py --qa)")
    parser.add_argument("--child", required=True, metavar="TIER")
    parser.add_argument("--model", required=True, help="tier name or GGUF path, for [models] llm")
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--pad-after", type=float, default=1.5)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--commands", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(child_main(_child_args(sys.argv[1:])))
