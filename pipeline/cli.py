"""The ``voxloop`` command.

Every expected failure (a bad input file, a bad model, no audio device, a bad config) ends
with one line on stderr and exit code 2; nothing is half-written. Everything the command
writes is the user's alone: it runs with umask 077 (``pipeline/private.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from voxloop.models.errors import ModelError
from voxloop.voice.echo_canceller import EchoCancellerError
from voxloop.voice.echo_path import EchoPathConfig, EchoPathError
from voxloop.voice.errors import AudioFileError

from .assistant.session_store import SessionRecorder, SessionStore, SessionStoreError, default_db_path
from .assistant.knowledge import KnowledgeError
from .config import DEFAULT_STATE_DIR, STATE_DIR_ENV, Config, ConfigError, load_config, setting_problem
from .dialog import Exchange
from .private import PRIVATE_UMASK, make_private

EXIT_USAGE = 2


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("models")
    g.add_argument("--config", type=Path, help="TOML config file (default: ~/.config/voxloop/config.toml if present)")
    g.add_argument("--asr-model", help="faster-whisper model folder, or a bundled name (default: tiny.en)")
    g.add_argument("--llm-model", help="a model name from 'voxloop models', or a GGUF file (default: auto, the largest installed that fits the memory)")
    g.add_argument("--llm-url", help="OpenAI-compatible server to use instead of the local GGUF, e.g. http://127.0.0.1:8080/v1")
    g.add_argument("--llm-api-key-env", metavar="VAR", help="environment variable holding the --llm-url server's API key (sent as a Bearer token, never shown)")
    g.add_argument("--voice", help="Piper voice .onnx (its .onnx.json beside it); default: en_US-joe-medium")
    g.add_argument("--hangover-ms", type=int, help="silence that ends your turn (default 500)")
    g.add_argument("--no-barge-in", action="store_true", help="half-duplex: do not listen while the assistant speaks")
    g.add_argument("--no-echo-cancel", action="store_true", help="do not take the assistant's voice out of the microphone (a headset needs none)")
    g.add_argument("--persona", help="the persona to start as: an id or name from [personas.*] in the config (default: [assistant] persona, or vox)")
    g.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxloop",
        description="A local voice assistant: talk to a language model, offline.",
        epilog=(
            "examples:\n"
            "  voxloop chat                               talk on the default microphone and speaker\n"
            "  voxloop devices                            list microphones and speakers\n"
            "  voxloop doctor                             check that everything chat needs is in place\n"
            "  voxloop replay question.wav                answer a recording in real time\n"
            "  voxloop replay question.wav --fast --out-dir out   ...on a simulated clock\n"
            "  voxloop chat --llm-url http://127.0.0.1:8080/v1    use an OpenAI-compatible server\n"
            "  voxloop chat --resume                      go on with the last conversation\n"
            "  voxloop models install qwen2.5-coder-1.5b  install a larger language model\n"
            "  voxloop sessions                           list the saved conversations\n"
            "  voxloop export last -o talk.md             a conversation as Markdown\n"
            "Run 'voxloop COMMAND --help' for every option."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("replay", help="run the pipeline on a recording; write conversation.wav and turns.jsonl")
    p.add_argument("input", type=Path, help="audio file (wav, flac, ogg, mp3; any rate and channel count)")
    p.add_argument("--out-dir", type=Path, help="where to write (default: ./<input name>.voxloop)")
    p.add_argument("--fast", action="store_true", help="simulated clock: as fast as the engines go (timings not meaningful)")
    _add_session_flags(p)
    echo = p.add_argument_group("simulated echo (a speaker heard by the microphone)")
    echo.add_argument("--echo-delay-ms", type=float, help="mix the assistant's audio back into the input this late, ms (0 or more)")
    echo.add_argument("--echo-gain-db", type=float, help="...at this level relative to the played audio, dB (0 or less; default -6)")
    echo.add_argument("--echo-room", action="store_true", help="...through a synthetic room (RT60 0.3 s)")
    _add_model_flags(p)

    p = sub.add_parser(
        "chat",
        help="talk on the default microphone and speaker",
        description=(
            "Talk on the microphone and speaker. On a terminal a live view shows what it is doing; "
            "elsewhere (or with --plain) each state change is one timestamped line on stdout, "
            "the first one 'ready: listening on ...'."
        ),
    )
    _add_device_flags(p)
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--plain", action="store_true", help="timestamped lines instead of the live view (the default when stdout is not a terminal)")
    shown.add_argument("--quiet", action="store_true", help="show nothing but warnings and errors")
    p.add_argument("--transcript", type=Path, help="append each turn to this JSONL file (default: STATE_DIR/chat-DATE.jsonl, STATE_DIR as --state-dir)")
    p.add_argument("--no-transcript", action="store_true", help="do not write the turns to a file")
    p.add_argument("--latency", default="0.1", help="PortAudio latency for both devices, seconds (or low/high); default 0.1")
    _add_session_flags(p)
    _add_model_flags(p)

    p = sub.add_parser("devices", help="list microphones and speakers (index, name, host API, channels, default rate)")
    p.add_argument("-v", "--verbose", action="count", default=0, help=argparse.SUPPRESS)

    p = sub.add_parser("sessions", help="list the saved conversations: id, date, turns, title (newest first)")
    p.add_argument("-n", "--limit", type=int, default=20, help="how many to list (default 20; 0 for all)")
    _add_state_dir_flag(p)
    p.add_argument("-v", "--verbose", action="count", default=0, help=argparse.SUPPRESS)

    p = sub.add_parser("export", help="write a saved conversation as Markdown")
    p.add_argument("session", nargs="?", default="last", help="session id, a unique beginning of one, or 'last' (the default)")
    p.add_argument("-o", "--output", type=Path, help="Markdown file to write (default: stdout)")
    _add_state_dir_flag(p)
    p.add_argument("-v", "--verbose", action="count", default=0, help=argparse.SUPPRESS)

    p = sub.add_parser(
        "models",
        help="the language models: list, install, verify, remove",
        description=(
            "Without an action: each known model with its size, the memory it needs, and whether it "
            "is installed and verified; the one 'auto' picks is marked. Installed models live in "
            "$VOXLOOP_DATA_DIR/models (default ~/.local/share/voxloop/models)."
        ),
    )
    p.add_argument("action", nargs="?", choices=["list", "install", "remove", "verify"], default="list")
    p.add_argument("name", nargs="?", help="a model name (see the list)")
    p.add_argument("--force", action="store_true", help="install: download and assemble again even if installed and verified")
    p.add_argument("-v", "--verbose", action="count", default=0, help=argparse.SUPPRESS)

    p = sub.add_parser("doctor", help="check PortAudio, devices, models, memory and threads; one line each with a fix")
    _add_device_flags(p)
    _add_model_flags(p)
    return parser


def _add_device_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-device", help="microphone: index or (part of the) name, case-insensitive; see 'voxloop devices'")
    p.add_argument("--output-device", help="speaker: index or (part of the) name, case-insensitive; see 'voxloop devices'")


def _add_state_dir_flag(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--state-dir", type=Path,
        help=f"where sessions (and chat transcripts) are kept (default: ${STATE_DIR_ENV} or {DEFAULT_STATE_DIR})",
    )  # fmt: skip


def _add_session_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sessions")
    g.add_argument(
        "--resume", nargs="?", const="last", metavar="SESSION",
        help="go on with a saved conversation: its id, a unique beginning of one, or nothing for the last",
    )  # fmt: skip
    g.add_argument("--no-save", action="store_true", help="do not save this conversation (see 'voxloop sessions')")
    _add_state_dir_flag(g)


def _settings(args: argparse.Namespace) -> Config:
    config = load_config(getattr(args, "config", None))
    if not hasattr(args, "asr_model"):
        return config
    if args.persona:
        chosen = config.personas.get(args.persona) if args.persona in config.personas else config.personas.by_spoken_name(args.persona)
        if chosen is None:
            raise ConfigError(f"--persona {args.persona!r}: no such persona; known: {', '.join(config.personas.ids())}. Define it as [personas.<id>] in the config")
        config.assistant.persona = chosen.id
    persona = config.personas.get(config.assistant.persona)
    m = config.models
    # The command line wins over the persona, and the persona over [models].
    m.asr = args.asr_model or m.asr
    m.llm = args.llm_model or persona.llm or m.llm
    m.llm_url = args.llm_url or persona.llm_url or (None if persona.llm else m.llm_url)
    m.llm_api_key_env = args.llm_api_key_env or m.llm_api_key_env
    m.voice = args.voice or persona.voice or m.voice
    if args.hangover_ms is not None:
        problem = setting_problem("turns", "hangover_ms", args.hangover_ms)
        if problem is not None:
            raise ConfigError(f"--hangover-ms: {problem.removeprefix('hangover_ms ')}")
        config.turns.hangover_ms = args.hangover_ms
    if args.no_barge_in:
        config.turns.barge_in = False
    if args.no_echo_cancel:
        config.turns.echo_cancel = False
    return config


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _fail(message: str) -> int:
    print(f"voxloop: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "chat":  # chat sets up its own logging, to suit its view
        _setup_logging(args.verbose)
    # Notes, sessions, transcripts (with the model's private reasoning), indexes, replay
    # outputs, exports: every folder created 0700, every file 0600 (SQLite's -wal and -shm too).
    umask = os.umask(PRIVATE_UMASK)
    try:
        if args.command == "devices":
            return _devices()
        if args.command == "sessions":
            return _sessions(args)
        if args.command == "export":
            return _export(args)
        if args.command == "models":
            return _models(args)
        config = _settings(args)
        if args.command == "replay":
            return _replay(args, config)
        if args.command == "doctor":
            return _doctor(args, config)
        return _chat(args, config)
    except (ConfigError, ModelError, AudioFileError, SessionStoreError, EchoCancellerError, EchoPathError, KnowledgeError) as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        print("voxloop: stopped", file=sys.stderr)
        return 0
    finally:
        os.umask(umask)  # main() may be called in process (tests)


def _replay(args: argparse.Namespace, config: Config) -> int:
    from voxloop.voice.audio_file import probe

    from .engines import check_models, load_engines
    from .replay import default_out_dir, run_replay

    echo = _echo_path(args)
    info = probe(args.input)  # bad input fails here, before models load or folders appear
    plan = check_models(config)
    out_dir = args.out_dir or default_out_dir(args.input)
    created = not out_dir.exists()
    with _conversation_memory(args, config) as (history, recorder):
        try:
            engines = load_engines(config, plan)
            clock = " on a simulated clock" if args.fast else ""
            print(f"voxloop: {plan.llm_line()}", file=sys.stderr, flush=True)
            print(f"voxloop: replaying {args.input} ({info.duration_s:.1f} s){clock}", file=sys.stderr, flush=True)
            result = run_replay(
                args.input, out_dir, engines, config,
                fast=args.fast, handle_signals=True, history=history, on_exchange=recorder, echo=echo,
                state_dir=_state_dir(args),
            )  # fmt: skip
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
    _say_saved(recorder)
    return 0


def _state_dir(args: argparse.Namespace) -> Path:
    """The state folder; the first time a command asks, a folder that others could read
    (left so by an older voxloop, a copy, a backup) is made private, with a one-line notice."""
    chosen = args.state_dir or os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR
    path = Path(chosen).expanduser()
    if not getattr(args, "state_dir_checked", False):
        args.state_dir_checked = True
        notice = make_private(path)
        if notice is not None:
            print(f"voxloop: {notice}", file=sys.stderr, flush=True)
    return path


def _open_store(args: argparse.Namespace, create: bool) -> SessionStore:
    """The sessions database; reading commands never create it."""
    path = default_db_path(_state_dir(args))
    if not create and not path.exists():
        raise SessionStoreError(f"no saved sessions yet in {path.parent}. Start one with 'voxloop chat', or give --state-dir")
    return SessionStore(path)


@contextlib.contextmanager
def _conversation_memory(args: argparse.Namespace, config: Config) -> Iterator[tuple[list[Exchange], SessionRecorder | None]]:
    """``--resume`` / ``--no-save``: the saved exchanges to go on from, and what saves new ones.

    A bad session spec or database fails here, before any model loads.
    """
    if args.no_save and args.resume is None:
        yield [], None
        return
    with _open_store(args, create=args.resume is None) as store:
        history: list[Exchange] = []
        session_id = None
        if args.resume is not None:
            session_id = store.resolve(args.resume)
            history = [saved.as_exchange() for saved in store.load(session_id)]
            print(f"voxloop: resuming session {session_id} ({len(history)} exchanges)", file=sys.stderr, flush=True)
        persona = config.personas.get(config.assistant.persona).name
        yield history, None if args.no_save else SessionRecorder(store, session_id, persona)


def _say_saved(recorder: SessionRecorder | None) -> None:
    if recorder is not None and recorder.saved:
        sid = recorder.session_id
        print(f"voxloop: saved as session {sid} (go on with --resume {sid}; 'voxloop export {sid}' for Markdown)", file=sys.stderr)


def _sessions(args: argparse.Namespace) -> int:
    with _open_store(args, create=False) as store:
        listed = store.list(limit=args.limit)
    if not listed:
        return _fail(f"no saved sessions yet in {store.path.parent}. Start one with 'voxloop chat'")
    print(f"{'SESSION':<8}  {'DATE':<16}  {'TURNS':>5}  TITLE")
    for s in listed:
        print(f"{s.id:<8}  {s.started:%Y-%m-%d %H:%M}  {s.turns:>5}  {s.title}")
    return 0


def _export(args: argparse.Namespace) -> int:
    with _open_store(args, create=False) as store:
        markdown = store.export_markdown(store.resolve(args.session))
    if args.output is None:
        sys.stdout.write(markdown)
        return 0
    try:
        args.output.write_text(markdown, encoding="utf-8")
    except OSError as e:
        return _fail(f"{args.output}: cannot write the export ({e.strerror}). Give another -o FILE")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _echo_path(args: argparse.Namespace) -> EchoPathConfig | None:
    """The simulated echo the flags ask for (None: none), checked before anything runs."""
    if args.echo_delay_ms is None and args.echo_gain_db is None and not args.echo_room:
        return None
    defaults = EchoPathConfig()
    echo = EchoPathConfig(
        delay_ms=defaults.delay_ms if args.echo_delay_ms is None else args.echo_delay_ms,
        gain_db=defaults.gain_db if args.echo_gain_db is None else args.echo_gain_db,
        room=args.echo_room,
    )
    try:
        echo.check()
    except EchoPathError as e:
        raise EchoPathError(f"{e} (--echo-delay-ms, --echo-gain-db)") from None
    return echo


def _devices() -> int:
    from voxloop.voice.devices import DeviceError, format_device_table, list_devices

    try:
        devices = list_devices()
    except DeviceError as e:
        return _fail(str(e))
    if not devices:
        return _fail("no audio devices found. Plug in a microphone and speakers (or start PulseAudio)")
    print(format_device_table(devices))
    return 0


def _models(args: argparse.Namespace) -> int:
    from voxloop.models import llm_tiers, model_installer

    if args.action == "list":
        if args.name:
            return _fail(f"'voxloop models {args.name}': give an action first (install, remove, verify)")
        auto = llm_tiers.choose_auto()
        print(f"{'NAME':<20}  {'SIZE':>7}  {'MEMORY':>7}  {'INSTALLED':<9}  {'VERIFIED':<8}  MODEL")
        for tier in llm_tiers.TIERS:
            s = model_installer.status(tier)
            mark = "*" if tier is auto.tier else " "
            installed = ("bundled" if tier.bundled else "yes") if s.installed else "no"
            verified = "yes" if s.verified else "-" if not s.installed else "not yet"
            print(
                f"{tier.name:<19}{mark}  {tier.size_bytes / 1e6:>5.0f}MB  {tier.memory_mb / 1024:>5.1f}GB  "
                f"{installed:<9}  {verified:<8}  {tier.title}, {tier.licence}"
            )  # fmt: skip
        print(f"* auto picks {auto.tier.name}: {auto.reason}")
        print(f"installed models are in {llm_tiers.models_dir()}")
        return 0
    if not args.name:
        return _fail(f"'voxloop models {args.action}' needs a model name: {', '.join(llm_tiers.names())}")
    try:
        if args.action == "install":
            model_installer.install(args.name, _progress_printer(), force=args.force)
        elif args.action == "verify":
            s = model_installer.verify(args.name, _progress_printer())
            print(f"{args.name}: verified (SHA-256 {s.tier.sha256[:12]}...): {s.path}")
        else:
            print(f"removed {model_installer.remove(args.name)}")
    except KeyboardInterrupt:
        print(f"voxloop: {args.action} of {args.name} interrupted; nothing was changed", file=sys.stderr)
        return 130
    return 0


def _progress_printer() -> Callable[[str], None]:
    """Progress on one rewritten line on a terminal, else one line each."""
    tty = sys.stderr.isatty()
    last = [""]

    def show(message: str) -> None:
        if message == last[0]:
            return
        last[0] = message
        if tty:
            print(f"\r\033[K{message}", end="" if message.startswith(("downloading", "assembling", "checking")) else "\n", file=sys.stderr, flush=True)
        else:
            print(message, file=sys.stderr, flush=True)

    return show


def _doctor(args: argparse.Namespace, config: Config) -> int:
    from .doctor import run_doctor

    return run_doctor(config, args.input_device, args.output_device, lambda line: print(line, flush=True))


def _transcript_path(args: argparse.Namespace) -> Path | None:
    if args.no_transcript:
        return None
    if args.transcript is not None:
        return Path(args.transcript).expanduser()
    import datetime

    return _state_dir(args) / f"chat-{datetime.datetime.now():%Y%m%d-%H%M%S}.jsonl"


def _latency_arg(value: str) -> float | str:
    if value in ("low", "high"):
        return value
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"--latency {value!r}: give low, high or a number of seconds") from None


def _chat(args: argparse.Namespace, config: Config) -> int:
    from voxloop.voice.devices import (
        DeviceError,
        import_sounddevice,
        list_devices,
        select_device,
    )

    from .engines import check_models
    from .live import ChatOptions, chat
    from .status_view import (
        PlainReporter,
        QuietReporter,
        TerminalView,
        native_stderr_to_log,
    )

    view = not (args.plain or args.quiet) and sys.stdout.isatty()
    _setup_chat_logging(args.verbose, view)
    latency = _latency_arg(args.latency)
    try:
        # Fail on a bad device choice in milliseconds, before any model is touched.
        sd = import_sounddevice()
        devices = list_devices(sd)
        if not devices:
            raise DeviceError("no audio devices found. Plug in a microphone and speakers (or start PulseAudio)")
        select_device(devices, _device_arg(args.input_device), "input")
        select_device(devices, _device_arg(args.output_device), "output")
    except DeviceError as e:
        return _fail(str(e))
    plan = check_models(config)
    transcript = _transcript_path(args)
    if transcript is not None:
        try:
            transcript.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            return _fail(f"{transcript.parent}: cannot create the transcript folder ({e}). Give --transcript FILE or --no-transcript")
    reporter = TerminalView() if view else QuietReporter() if args.quiet else PlainReporter()
    try:
        with _conversation_memory(args, config) as (history, recorder):
            options = ChatOptions(args.input_device, args.output_device, transcript, latency, history, recorder, _state_dir(args))
            print(f"voxloop: {plan.llm_line()}", file=sys.stderr, flush=True)
            with native_stderr_to_log() if view else _nothing():
                try:
                    result = asyncio.run(chat(config, plan, options, reporter))
                finally:
                    if isinstance(reporter, TerminalView):
                        reporter.close()
    except DeviceError as e:
        return _fail(str(e))
    _say_saved(recorder)
    logging.getLogger(__name__).debug("conversation over")
    if transcript is not None and result.turns:
        print(f"voxloop: transcript in {transcript}", file=sys.stderr, flush=True)
    elif transcript is not None and transcript.exists() and transcript.stat().st_size == 0:
        transcript.unlink()  # no turn, no file
    if result.loader_running or _engine_threads_busy():
        # Stopped while a model was loading, or while an engine was inside one long call
        # (reading a prompt, transcribing): those threads cannot be interrupted and Python
        # would wait for them at exit. Everything worth keeping is written; leave now.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _engine_threads_busy(grace_s: float = 0.2) -> bool:
    """Non-daemon threads still running after ``grace_s`` (idle engine workers end at once)."""
    import threading
    import time

    deadline = time.monotonic() + grace_s
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            return True
    return False


def _setup_chat_logging(verbose: int, view: bool) -> None:
    """With the live view, log lines print above the panel instead of through it."""
    if not view:
        _setup_logging(verbose)
        return
    from rich.logging import RichHandler

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(name)s: %(message)s", handlers=[RichHandler(show_path=False)])


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def _device_arg(value: str | None) -> int | str | None:
    from voxloop.voice.devices import parse_device_spec

    return parse_device_spec(value)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
