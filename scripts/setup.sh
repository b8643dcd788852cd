# Sourced by scripts/serve and scripts/test: create .venv and install voicewire into it, saying what
# happens. A first install downloads gigabytes (torch, chatterbox-tts) and takes minutes, so each phase
# prints a line with the elapsed time and pip shows its own progress; nothing is silenced, so what
# explains a failure is on the screen, followed by the phase it failed in.

SETUP_NAME=$(basename "$0")
SETUP_PHASE="starting"

phase() {  # phase "what now": one line on stderr, with the seconds since the script started
    SETUP_PHASE=$*
    printf '%s [%4ds] %s\n' "$SETUP_NAME" "$SECONDS" "$*" >&2
}

trap 'rc=$?; [ $rc -eq 0 ] || printf "%s: failed (exit %d) after %ds, while %s\n" "$SETUP_NAME" "$rc" "$SECONDS" "$SETUP_PHASE" >&2' EXIT

# setup_venv EXTRAS: .venv with voicewire[EXTRAS] installed (editable), activated in this shell.
# Reinstalls only when pyproject.toml, the extras or the Python changed since the last success.
setup_venv() {
    local extras=$1 py=${PYTHON:-python3} stamp want
    if [ ! -x .venv/bin/python ]; then
        phase "creating .venv with $("$py" --version 2>&1)"
        "$py" -m venv .venv
    fi
    . .venv/bin/activate
    stamp=.venv/.voicewire-installed
    want="$extras $(python --version 2>&1) $(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        phase "voicewire[$extras] already installed in .venv (pyproject.toml unchanged; rm $stamp to reinstall)"
        return
    fi
    phase "upgrading pip"
    python -m pip install --upgrade pip
    phase "installing voicewire[$extras] and its dependencies into .venv (a first run downloads several GB: minutes)"
    python -m pip install --progress-bar on -e ".[$extras]"
    printf '%s\n' "$want" > "$stamp"
    phase "installed voicewire[$extras]"
}
