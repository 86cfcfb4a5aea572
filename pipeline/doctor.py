"""``voxloop doctor``: is this machine ready to talk? One line per check, each with a fix.

Checks, in order: PortAudio, the microphone and speaker ``chat`` would use, the models (files,
then really loaded and warmed), free memory, and the CPU count with the thread settings the
engines will use. Exit code 0 when nothing failed (warnings allowed), 1 otherwise.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from voxloop.models.errors import ModelError
from voxloop.models.registry import DEFAULT_ASR

from .config import Config

OK, WARN, FAIL = "ok", "warn", "FAIL"

MIN_FREE_MB = 300
"""Memory that should stay available with the models loaded, for the system and the audio."""


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> {self.fix}" if self.fix and self.status != OK else ""
        return f"{self.status:<4}  {self.name}: {self.detail}{fix}"


def check_portaudio() -> Check:
    from voxloop.voice.devices import PORTAUDIO_PACKAGE, DeviceError, import_sounddevice

    try:
        sd = import_sounddevice()
    except DeviceError as e:
        return Check("PortAudio", FAIL, str(e).split(":")[0], f"sudo apt-get install {PORTAUDIO_PACKAGE}")
    return Check("PortAudio", OK, str(sd.get_portaudio_version()[1]))


def check_devices(input_device: str | None, output_device: str | None) -> list[Check]:
    from voxloop.voice.devices import (
        DeviceError,
        choose_rate,
        import_sounddevice,
        list_devices,
        opens_at,
        parse_device_spec,
        select_device,
    )

    try:
        sd = import_sounddevice()
        devices = list_devices(sd)
    except DeviceError:
        return [Check("devices", FAIL, "cannot list audio devices without PortAudio", "install PortAudio (see above)")]
    except Exception as e:  # noqa: BLE001 - PortAudioError
        return [Check("devices", FAIL, f"PortAudio cannot list the devices ({e})", "check the sound server (pactl info)")]
    checks = []
    for kind, spec, flag in (("input", input_device, "--input-device"), ("output", output_device, "--output-device")):
        what = "microphone" if kind == "input" else "speaker"
        try:
            d = select_device(devices, parse_device_spec(spec), kind)  # type: ignore[arg-type]
        except DeviceError as e:
            checks.append(
                Check(what, FAIL, str(e), f"plug one in or start PulseAudio/PipeWire; list them with 'voxloop devices', pick with {flag}")
            )
            continue
        try:
            rate = choose_rate(d.default_samplerate, partial(opens_at, sd, kind, d.index, max_channels=d.channels(kind)))  # type: ignore[arg-type]
        except DeviceError as e:
            checks.append(Check(what, FAIL, f"{d.label()}: {e}", f"pick another with {flag} ('voxloop devices' lists them)"))
            continue
        note = " (resampled to 16000 Hz)" if kind == "input" and rate != 16000 else ""
        checks.append(Check(what, OK, f"{d.label()} at {rate} Hz{note}"))
    return checks


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def available_mb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (ValueError, OSError):
        return None


def check_models(config: Config) -> tuple[list[Check], float]:
    """Files first, then a real load and warm-up. Returns the checks and the MB the engines took."""
    from .engines import check_models as check_files
    from .engines import load_engines

    fix = "reinstall the bundled models (./scripts/install.sh) or point the config/flags at good files"
    try:
        plan = check_files(config)
    except ModelError as e:
        return [Check("models", FAIL, str(e), fix)], 0.0
    llm = plan.llm_url or (plan.llm.name if plan.llm else "?")
    where = [f"asr {config.models.asr or DEFAULT_ASR}", f"llm {llm}", f"voice {plan.voice.model.name}"]
    checks = [Check("model files", OK, ", ".join(where)), Check("language model", OK, plan.llm_line().split(": ", 1)[1])]
    before = _rss_mb()
    started = time.perf_counter()
    try:
        engines = load_engines(config, plan, warm=True)
    except Exception as e:  # noqa: BLE001 - any engine failure is a failed check
        return checks + [Check("models load", FAIL, f"{type(e).__name__}: {e}", fix)], 0.0
    took = time.perf_counter() - started
    used = max(0.0, _rss_mb() - before)
    ms = engines.load_ms
    detail = (
        f"loaded and warmed in {took:.1f} s (asr {ms.get('asr', 0) + ms.get('asr_warm', 0):.0f} ms, "
        f"llm {ms.get('llm', 0) + ms.get('llm_warm', 0):.0f} ms, tts {ms.get('tts', 0) + ms.get('tts_warm', 0):.0f} ms), "
        f"~{used:.0f} MB"
    )
    checks.append(Check("models load", OK, detail))
    return checks, used


def check_memory(models_mb: float) -> Check:
    free = available_mb()
    if free is None:
        return Check("memory", WARN, "cannot tell how much memory is free", "")
    detail = f"{free:.0f} MB available" + (f" with the models loaded ({models_mb:.0f} MB)" if models_mb else "")
    if free < MIN_FREE_MB:
        return Check("memory", FAIL, detail, "close other programs, or use smaller models (--asr-model, --llm-model)")
    if free < 2 * MIN_FREE_MB:
        return Check("memory", WARN, detail + "; little headroom", "close other programs for a smoother conversation")
    return Check("memory", OK, detail)


def check_cpu(config: Config) -> Check:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    t = config.threads
    detail = f"{cores} core(s) usable ({os.cpu_count()} in the machine); threads: asr {t.asr}, llm {t.llm}, tts {t.tts}"
    fix = f"set [threads] in ~/.config/voxloop/config.toml so that llm + tts <= {cores} (e.g. llm = {max(1, cores - 1)}, tts = 1)"
    # The language model and the synthesizer run at the same time (a clause is spoken while
    # the next is generated); recognition runs alone.
    if t.llm + t.tts > cores + 1 or t.asr > cores:
        return Check("cpu", FAIL, detail + " (oversubscribed)", fix)
    if t.llm + t.tts > cores:
        return Check("cpu", WARN, detail + " (llm + tts exceed the cores by one)", fix)
    return Check("cpu", OK, detail)


def run_doctor(config: Config, input_device: str | None, output_device: str | None, emit: Callable[[str], None]) -> int:
    """Prints each check as it completes. Returns 0 if none failed, else 1."""
    checks: list[Check] = []

    def add(*new: Check) -> None:
        for c in new:
            checks.append(c)
            emit(c.line())

    add(check_portaudio())
    add(*check_devices(input_device, output_device))
    model_checks, used = check_models(config)
    add(*model_checks)
    add(check_memory(used))
    add(check_cpu(config))
    failed = [c for c in checks if c.status == FAIL]
    warned = sum(c.status == WARN for c in checks)
    note = f" ({warned} warning{'s' if warned > 1 else ''})" if warned else ""
    emit(f"{len(checks) - len(failed)}/{len(checks)} checks passed{note}" + ("; fix the FAIL lines above" if failed else ""))
    return 1 if failed else 0
