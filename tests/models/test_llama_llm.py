"""The in-process GGUF model: streaming, and a conversation longer than its context window."""

from __future__ import annotations

import asyncio

from voxloop.pipeline.dialog import Dialog
from voxloop.pipeline.engines import Engines
from voxloop.pipeline.frames import ReplyEndFrame, SentenceFrame, TranscriptFrame
from voxloop.pipeline.reply_stage import APOLOGY, ReplyStage
from voxloop.pipeline.stage import run_stage


def test_streams_a_reply_token_by_token(engines: Engines) -> None:
    deltas = list(engines.llm.stream([{"role": "user", "content": "Say hello."}], max_tokens=12))
    assert len(deltas) >= 2 and "".join(deltas).strip()


def test_a_conversation_longer_than_the_context_window_is_trimmed_not_an_error(engines: Engines) -> None:
    dialog = Dialog(max_history_chars=1_000_000)
    for n in range(40):
        exchange = dialog.begin(n, f"Question {n}: tell me everything about the history of bridges, " * 4)
        exchange.reply = "Bridges have a long history of stone, wood and steel construction. " * 4
    stage = ReplyStage(engines.llm, dialog, max_tokens=24)
    untrimmed = dialog._render(dialog.exchanges + [dialog.begin(99, "What is two plus two?")])
    dialog.exchanges.pop()
    assert not stage.llm_fits(untrimmed)  # the whole history would overflow the 2048 tokens

    frames = asyncio.run(run_stage(stage, [TranscriptFrame(99, "What is two plus two?", 0.0, 0.0)]))

    spoken = [f.text for f in frames if isinstance(f, SentenceFrame)]
    assert spoken and APOLOGY not in spoken
    assert isinstance(frames[-1], ReplyEndFrame) and frames[-1].text


def test_the_next_turn_only_prefills_its_new_words(engines: Engines) -> None:
    """The system prompt and earlier turns stay in llama.cpp's KV cache between turns."""
    llm = engines.llm
    evaluated: list[int] = []
    original = llm.model.eval  # type: ignore[attr-defined]

    def counting_eval(tokens):  # type: ignore[no-untyped-def]
        evaluated.append(len(tokens))
        return original(tokens)

    dialog = Dialog()
    first = dialog.begin(1, "What is the capital of France?")
    llm.model.eval = counting_eval  # type: ignore[attr-defined]
    try:
        first.reply = "".join(llm.stream(dialog.messages(), max_tokens=16))
        evaluated.clear()
        dialog.begin(2, "And of Italy?")
        messages = dialog.messages()
        list(llm.stream(messages, max_tokens=4))
    finally:
        del llm.model.eval  # type: ignore[attr-defined]

    whole_prompt = sum(len(llm.model.tokenize(m["content"].encode(), add_bos=False)) for m in messages)  # type: ignore[attr-defined]
    prefill = evaluated[0]
    assert prefill < whole_prompt / 2, (prefill, whole_prompt)


def test_a_question_read_ahead_leaves_only_its_last_words_and_the_template_to_read(engines: Engines) -> None:
    """While the user speaks, their words so far go into the KV cache; the answer reads the rest."""
    llm = engines.llm
    dialog = Dialog()
    dialog.begin(1, "Hello there.").reply = "Hi! How can I help?"
    history = dialog.messages()
    question = "What is the capital of France?"
    list(llm.prefill([*history, {"role": "user", "content": "Tell me a joke"}]))  # the history in the cache
    steps = list(llm.prefill([*history, {"role": "user", "content": "What is the capital of"}]))
    assert steps and steps == sorted(steps)  # it read something, step by step

    evaluated: list[int] = []
    original = llm.model.eval  # type: ignore[attr-defined]

    def counting_eval(tokens):  # type: ignore[no-untyped-def]
        evaluated.append(len(tokens))
        return original(tokens)

    llm.model.eval = counting_eval  # type: ignore[attr-defined]
    try:
        reply = "".join(llm.stream([*history, {"role": "user", "content": question}], max_tokens=8))
        assert not list(llm.prefill([*history, {"role": "user", "content": question}]))  # all there already
    finally:
        del llm.model.eval  # type: ignore[attr-defined]

    assert reply.strip()
    # " France?" and the template's end of the user turn and start of the assistant's: a few
    # tokens, then one per generated token.
    assert evaluated[0] <= 10, evaluated

