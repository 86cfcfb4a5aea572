#!/usr/bin/env bash
# A private PulseAudio server for the live tests: real audio devices, no hardware.
#
#   scripts/pulse_test_server.sh start DIR   start it in DIR; print the environment its clients need
#   scripts/pulse_test_server.sh env DIR     print that environment again (KEY=VALUE lines)
#   scripts/pulse_test_server.sh stop DIR    stop it (and wait until it is gone)
#
# Two null sinks: "vmic", the virtual microphone (play a question into it; its monitor,
# vmic.monitor, is the default source), and "vspk", the virtual speaker (the default sink;
# record vspk.monitor to hear what was said). Everything lives in DIR: the socket, the state,
# the log (DIR/pulse.log), a HOME for the daemon and an ALSA config that adds two named
# PortAudio devices, "vmic" and "vspk". Clients reach this server only through the printed
# variables (PULSE_SERVER etc.), so a user's own sound server is never touched.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|env|stop DIR" >&2
  exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
socket="$dir/run/native"

client_env() {
  echo "PULSE_SERVER=unix:$socket"
  echo "PULSE_RUNTIME_PATH=$dir/run"
  echo "XDG_CONFIG_HOME=$dir/config"
}

with_client_env() {
  env PULSE_SERVER="unix:$socket" PULSE_RUNTIME_PATH="$dir/run" XDG_CONFIG_HOME="$dir/config" "$@"
}

running() {
  [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null
}

case "$cmd" in
  start)
    command -v pulseaudio >/dev/null || { echo "pulseaudio is not installed (apt-get install pulseaudio)" >&2; exit 3; }
    command -v pactl >/dev/null || { echo "pactl is not installed (apt-get install pulseaudio-utils)" >&2; exit 3; }
    if running; then
      echo "a test server is already running in $dir (pid $(cat "$dir/pid"))" >&2
      exit 1
    fi
    mkdir -p "$dir/run" "$dir/state" "$dir/home" "$dir/config/alsa"
    chmod 700 "$dir/run"
    cat > "$dir/config/alsa/asoundrc" <<'EOF'
pcm.vmic {
    type pulse
    device "vmic.monitor"
    hint { show on
           description "virtual microphone (PulseAudio vmic.monitor)" }
}
pcm.vspk {
    type pulse
    device "vspk"
    hint { show on
           description "virtual speaker (PulseAudio vspk)" }
}
EOF
    # --daemonize=no in the background: the pid is ours to stop. -n: no default.pa (no real
    # hardware modules); --exit-idle-time=-1: stays up with no clients.
    env -u PULSE_SERVER HOME="$dir/home" XDG_CONFIG_HOME="$dir/config" XDG_RUNTIME_DIR="$dir/run" \
      PULSE_RUNTIME_PATH="$dir/run" PULSE_STATE_PATH="$dir/state" \
      pulseaudio -n --daemonize=no --exit-idle-time=-1 --use-pid-file=no --log-target=file:"$dir/pulse.log" \
        -L "module-native-protocol-unix auth-anonymous=1 socket=$socket" \
        -L "module-null-sink sink_name=vmic sink_properties=device.description=virtual-microphone" \
        -L "module-null-sink sink_name=vspk sink_properties=device.description=virtual-speaker" \
        </dev/null >"$dir/daemon.out" 2>&1 &
    echo $! > "$dir/pid"
    for _ in $(seq 100); do
      if with_client_env pactl info >/dev/null 2>&1; then
        with_client_env pactl set-default-source vmic.monitor
        with_client_env pactl set-default-sink vspk
        client_env
        exit 0
      fi
      running || break
      sleep 0.1
    done
    echo "the PulseAudio test server did not start; its log:" >&2
    cat "$dir/daemon.out" "$dir/pulse.log" >&2 2>/dev/null || true
    kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid"
    exit 1
    ;;
  env)
    client_env
    ;;
  stop)
    if [ -f "$dir/pid" ]; then
      pid=$(cat "$dir/pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/pid"
    fi
    ;;
  *)
    echo "usage: $0 start|env|stop DIR" >&2
    exit 2
    ;;
esac
