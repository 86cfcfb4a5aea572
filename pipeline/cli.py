"""The ``voxloop`` command.

Every expected failure (a bad input file, a bad model, no audio device, a bad config) ends
with one line on stderr and exit code 2; nothing is half-written.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
from pathlib import Path

from voxloop.models.errors import ModelError
from voxloop.voice.errors import AudioFileError

from .config import Config, ConfigError, load_config

EXIT_USAGE = 2


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("models")
    g.add_argument("--config", type=Path, help="TOML config file (default: ~/.config/voxloop/config.toml if present)")
    g.add_argument("--asr-model", help="faster-whisper model folder, or a bundled name (default: tiny.en)")
    g.add_argument("--llm-model", help="GGUF file (default: the bundled SmolLM2-135M-Instruct)")
    g.add_argument("--llm-url", help="OpenAI-compatible server to use instead of the local GGUF, e.g. http://127.0.0.1:8080/v1")
    g.add_argument("--voice", help="Piper voice .onnx (its .onnx.json beside it); default: en_US-joe-medium")
    g.add_argument("--hangover-ms", type=int, help="silence that ends your turn (default 500)")
    g.add_argument("--no-barge-in", action="store_true", help="half-duplex: do not listen while the assistant speaks")
    g.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxloop",
        description="A local voice assistant: talk to a language model, offline.",
        epilog=(
            "examples:\n"
            "  voxloop chat                               talk on the default microphone and speaker\n"
            "  voxloop replay question.wav                answer a recording in real time\n"
            "  voxloop replay question.wav --fast --out-dir out   ...on a simulated clock\n"
            "  voxloop chat --llm-url http://127.0.0.1:8080/v1    use an OpenAI-compatible server\n"
            "Run 'voxloop COMMAND --help' for every option."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("replay", help="run the pipeline on a recording; write conversation.wav and turns.jsonl")
    p.add_argument("input", type=Path, help="audio file (wav, flac, ogg, mp3; any rate and channel count)")
    p.add_argument("--out-dir", type=Path, help="where to write (default: ./<input name>.voxloop)")
    p.add_argument("--fast", action="store_true", help="simulated clock: as fast as the engines go (timings not meaningful)")
    _add_model_flags(p)

    p = sub.add_parser("chat", help="talk on the default microphone and speaker")
    p.add_argument("--input-device", help="microphone index or name")
    p.add_argument("--output-device", help="speaker index or name")
    _add_model_flags(p)
    return parser


def _settings(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    m = config.models
    m.asr = args.asr_model or m.asr
    m.llm = args.llm_model or m.llm
    m.llm_url = args.llm_url or m.llm_url
    m.voice = args.voice or m.voice
    if args.hangover_ms is not None:
        config.turns.hangover_ms = args.hangover_ms
    if args.no_barge_in:
        config.turns.barge_in = False
    return config


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _fail(message: str) -> int:
    print(f"voxloop: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        config = _settings(args)
        if args.command == "replay":
            return _replay(args, config)
        return _chat(args, config)
    except (ConfigError, ModelError, AudioFileError) as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        print("voxloop: stopped", file=sys.stderr)
        return 0


def _replay(args: argparse.Namespace, config: Config) -> int:
    from voxloop.voice.audio_file import probe

    from .engines import check_models, load_engines
    from .replay import default_out_dir, run_replay

    info = probe(args.input)  # bad input fails here, before models load or folders appear
    plan = check_models(config)
    out_dir = args.out_dir or default_out_dir(args.input)
    created = not out_dir.exists()
    try:
        engines = load_engines(config, plan)
        clock = " on a simulated clock" if args.fast else ""
        print(f"voxloop: replaying {args.input} ({info.duration_s:.1f} s){clock}", file=sys.stderr, flush=True)
        result = run_replay(args.input, out_dir, engines, config, fast=args.fast, handle_signals=True)
    except BaseException:
        if created and out_dir.exists() and not any(out_dir.iterdir()):
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    for t in result.turns:
        latency = f"{t.latency_ms:.0f} ms" if t.latency_ms is not None else "n/a"
        mark = " [interrupted]" if t.interrupted else ""
        print(f"[{t.user_end_s or 0:7.2f} s] you: {t.user_text}")
        print(f"[{t.reply_start_s or 0:7.2f} s] vox ({latency}){mark}: {t.assistant_text}")
    print(f"wrote {result.conversation} ({result.duration_s:.1f} s) and {result.turns_path} ({len(result.turns)} turns)")
    return 0


def _chat(args: argparse.Namespace, config: Config) -> int:
    from voxloop.voice.devices import (
        DeviceError,
        SoundDeviceDuplex,
        default_output_rate,
        import_sounddevice,
    )
    from voxloop.voice.playback import OutputBuffer

    from .dialog import Dialog
    from .engines import check_models, load_engines
    from .replay import session_config
    from .session import VoiceSession
    from .signals import install_stop_handlers
    from .turn_log import TurnLog

    try:
        sd = import_sounddevice()
        if not sd.query_devices():
            raise DeviceError("no audio devices found. Plug in a microphone and speakers (or start PulseAudio)")
        input_device = _device_arg(args.input_device)
        output_device = _device_arg(args.output_device)
        rate = default_output_rate(output_device)
    except DeviceError as e:
        return _fail(str(e))
    plan = check_models(config)
    print("voxloop: loading models…", file=sys.stderr)
    engines = load_engines(config, plan)
    output = OutputBuffer(rate)
    log = TurnLog(None, on_finish=lambda t: print(f"you: {t.user_text}\nvox: {t.assistant_text}  ({t.latency_ms or 0:.0f} ms)", flush=True))
    session = VoiceSession(
        engines.asr,
        engines.llm,
        engines.tts,
        output,
        log,
        Dialog(config.dialog.system_prompt, config.dialog.max_history_chars),
        session_config(config, barge_in_default=False),
    )
    device = SoundDeviceDuplex(output, input_device, output_device)

    async def run() -> None:
        install_stop_handlers(session.stop)
        print("voxloop: listening (Ctrl-C to quit)", file=sys.stderr, flush=True)
        await session.run(device)

    try:
        asyncio.run(run())
    except DeviceError as e:
        return _fail(str(e))
    finally:
        log.close()
    return 0


def _device_arg(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.isdigit() else value


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
