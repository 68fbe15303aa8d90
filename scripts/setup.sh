#!/usr/bin/env bash
# Prepare this machine for Coalesce: Debian packages, a Python >= 3.11 virtualenv in .venv, and the
# project installed in it with its dev tools. Safe to run again: it only does what is missing.
set -euo pipefail

# Debian packages the project needs at run and test time. Add new ones here (servers for later tests too).
APT_PACKAGES=(
    # a virtual X server for headless runs and tests, and the tools to look at it
    xvfb x11-utils x11-xserver-utils
    # the Qt 6 xcb platform plugin's runtime libraries (without them Qt aborts, naming the wrong library)
    libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-render-util0
    libxcb-image0 libxcb-randr0 libxcb-xinerama0 libxcb-xkb1 libegl1 libgl1 libfontconfig1 libdbus-1-3
    # the cloud's real servers, started by the tests and `coalesce-cloud up` (never as system services)
    ejabberd coturn postgresql
    # real proxies and network isolation for the proxy tests (started by the tests, never as services)
    squid apache2-utils dante-server nftables iproute2
    # impaired links (coalesce_testing.impair): iptables' NFQUEUE target, and what pip needs to build the
    # NetfilterQueue bindings of the packet delayer (no wheel on PyPI)
    iptables libnetfilter-queue-dev gcc libc6-dev python3-dev
    # the benchmark's baselines: an ffmpeg capture -> encode -> decode pipeline, and two browsers over WebRTC
    # (Playwright drives Debian's Chromium through executable_path, never its own download; xdotool moves
    # the sending Chromium's "sharing your screen" bar off the shared screen, as a user's "Hide" click would)
    ffmpeg chromium xdotool
    # the sharing page's Firefox test (tests/web/firefoxlab.py drives Debian's Firefox ESR over WebDriver BiDi)
    firefox-esr
    # shared sound: a private PulseAudio server per test session with null sinks (never the system's), and
    # the library the ``soundcard`` package talks to it with
    pulseaudio pulseaudio-utils libpulse0
    # the checks of resources/ (desktop entries, AppStream metadata), as the desktops and lintian read them
    desktop-file-utils appstream
    # the installer tests (tests/installers): a real Secret Service on a private D-Bus for the installed
    # app's keyring, systemd-analyze for the room's units (installers/build.sh installs its own build tools)
    gnome-keyring dbus-daemon systemd
    # the browser sender's JavaScript (coalesce_cloud/web): Node runs its tests against the Python pairing
    # (npm, which installs its packages from the lockfile, comes with it or below)
    nodejs
)
PYTHON_CANDIDATES=(python3.13 python3.12 python3.11 python3)
MIN_PYTHON="3.11"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.coalesce-installed"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

APT_UPDATED=0
apt_install() {
    local -a runner=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 \
            || die "need root or sudo to install Debian packages: $*"
        runner=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 \
        || die "apt-get not found; install these packages by hand: $*"
    local log
    log="$(mktemp -t coalesce-apt.XXXXXX)"
    if [[ $APT_UPDATED -eq 0 ]]; then
        say "apt-get update"
        if ! "${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1; then
            cat "$log" >&2; rm -f "$log"; die "apt-get update failed"
        fi
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    if ! "${runner[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >"$log" 2>&1; then
        cat "$log" >&2; rm -f "$log"; die "apt-get install failed"
    fi
    rm -f "$log"
}

is_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

install_missing_packages() {
    local -a missing=()
    local pkg
    for pkg in "$@"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        return 0
    fi
    apt_install "${missing[@]}"
}

# Prints the first interpreter that runs and is new enough; shims (pyenv) that exist but fail are skipped.
find_python() {
    local candidate
    for candidate in "${PYTHON_CANDIDATES[@]}"; do
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; then
            "$candidate" -c 'import sys; print(sys.executable)'
            return 0
        fi
    done
    return 1
}

venv_python_ok() {
    [[ -x "$VENV/bin/python" ]] \
        && "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

create_venv() {
    local python
    python="$(find_python)" || die "Python >= $MIN_PYTHON is required; none of ${PYTHON_CANDIDATES[*]} is new enough.
  Install one (e.g. 'apt-get install python3' on Debian 12+/Ubuntu 24.04+, or python3.11 from your distribution) and run again."
    local version
    version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    say "creating .venv with $python (Python $version)"
    rm -rf "$VENV"
    if "$python" -m venv "$VENV" >/dev/null 2>&1; then
        return 0
    fi
    # Debian and Ubuntu split venv/ensurepip into python3-venv (and python3.X-venv).
    rm -rf "$VENV"
    local -a venv_packages=(python3-venv)
    if apt-cache show "python${version}-venv" >/dev/null 2>&1; then
        venv_packages+=("python${version}-venv")
    fi
    install_missing_packages "${venv_packages[@]}"
    "$python" -m venv "$VENV" || die "could not create a virtualenv with $python"
}

# The browser sender's npm packages, exactly as its lockfile names them, when the lockfile changed.
install_web_packages() {
    local web="$ROOT/coalesce_cloud/web" want have=""
    want="$(sha256sum "$web/package-lock.json" | cut -d' ' -f1)"
    [[ -f "$web/node_modules/.coalesce-installed" ]] && have="$(cat "$web/node_modules/.coalesce-installed")"
    if [[ "$want" == "$have" ]]; then
        say "npm packages up to date (coalesce_cloud/web)"
        return
    fi
    if ! command -v npm >/dev/null 2>&1; then  # Debian's nodejs has no npm; NodeSource's has it built in
        install_missing_packages npm
    fi
    say "installing the browser sender's npm packages (npm ci in coalesce_cloud/web)"
    local log
    log="$(mktemp -t coalesce-npm.XXXXXX)"
    if ! (cd "$web" && npm ci --no-audit --no-fund) >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        rm -f "$log"
        die "npm ci failed (output above)"
    fi
    rm -f "$log"
    printf '%s\n' "$want" >"$web/node_modules/.coalesce-installed"
}

# The sharing page the cloud serves at /share/ (coalesce_cloud/web/dist), rebuilt when its sources changed.
build_share_page() {
    local web="$ROOT/coalesce_cloud/web" want have=""
    want="$(cd "$web" && cat package-lock.json build.mjs src/*.js page/* | sha256sum | cut -d' ' -f1)"
    [[ -f "$web/dist/.coalesce-built" ]] && have="$(cat "$web/dist/.coalesce-built")"
    if [[ "$want" == "$have" ]]; then
        say "sharing page up to date (coalesce_cloud/web/dist)"
        return
    fi
    say "building the sharing page (npm run build in coalesce_cloud/web)"
    (cd "$web" && npm run --silent build) || die "the sharing page did not build (output above)"
    printf '%s\n' "$want" >"$web/dist/.coalesce-built"
}

main() {
    cd "$ROOT"
    say "checking Debian packages"
    if command -v dpkg-query >/dev/null 2>&1; then
        install_missing_packages "${APT_PACKAGES[@]}"
    else
        say "warning: not a Debian-like system; install the equivalents of these by hand: ${APT_PACKAGES[*]}"
    fi

    if ! venv_python_ok; then
        create_venv
    fi

    local want have=""
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    [[ -f "$STAMP" ]] && have="$(cat "$STAMP")"
    if [[ "$want" == "$have" ]]; then
        say "Python packages up to date ($("$VENV/bin/python" -V 2>&1) in .venv)"
    else
        # keyrings.alt comes with the dev tools for the tests, which name it in PYTHON_KEYRING_BACKEND; the apps
        # refuse it otherwise (coalesce_common/keyring_store.py): a run never keeps secrets in its plaintext file.
        say "installing the project and its dev tools into .venv (pip install -e '.[dev]')"
        rm -f "$STAMP"
        local log
        log="$(mktemp -t coalesce-pip.XXXXXX)"
        if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -e '.[dev]' >"$log" 2>&1; then
            tail -n 60 "$log" >&2
            rm -f "$log"
            die "pip install failed (output above)"
        fi
        rm -f "$log"
        printf '%s\n' "$want" >"$STAMP"
    fi
    install_web_packages
    build_share_page
    say "ready"
}

main "$@"
