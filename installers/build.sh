#!/usr/bin/env bash
# Build the installers: `bash installers/build.sh linux` writes both Debian packages into dist/
#   dist/coalesce_VERSION-1~debian-bookworm_amd64.deb        the sender (desktop app and `coalesce` command)
#   dist/coalesce-room_VERSION-1~debian-bookworm_amd64.deb   the room display (kiosk and headless units)
# Windows (MSI) and macOS (DMG) are built on those systems by .github/workflows/installers.yml.
#
# COALESCE_VERSION=X.Y.Z builds that version instead of pyproject.toml's (the update test's N+1 package);
# COALESCE_APPS="coalesce" builds only the named apps; COALESCE_DIST=DIR writes the packages there instead of dist/. Needs root or sudo for the Debian packages Briefcase
# checks for; everything else happens in build/installers/ (a copy of the tree, the build venv, the bundles).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$ROOT/build/installers"
BRIEFCASE_VENV="$WORK/venv"
STAGE="$WORK/src"
TEMPLATE_BRANCH="v0.4.1"  # the linux system template branch that works with installers/requirements.txt
APPS=(${COALESCE_APPS:-coalesce coalesce-room})
DIST="${COALESCE_DIST:-$ROOT/dist}"

say() { printf 'build: %s\n' "$*"; }
die() { printf 'build: error: %s\n' "$*" >&2; exit 1; }

# What Briefcase checks with `dpkg -s` before it builds (its own list, then each app's system_runtime_requires).
BUILD_PACKAGES=(
    python3-dev python3-venv dpkg-dev g++ gcc libc6-dev make git
    libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-render-util0
    libxcb-image0 libxcb-randr0 libxcb-xinerama0 libxcb-xkb1 libegl1 libgl1 libfontconfig1 libdbus-1-3
    cage xwayland adduser
)

install_build_packages() {
    local -a missing=() runner=()
    local pkg
    for pkg in "${BUILD_PACKAGES[@]}"; do
        [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: ${missing[*]}"
        runner=(sudo)
    fi
    say "apt-get update, then apt-get install ${missing[*]}"
    "${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
    "${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null || die "apt-get install failed: ${missing[*]}"
}

# Briefcase insists on the system interpreter for `linux system` (the package runs on /usr/bin/python3).
make_briefcase_venv() {
    local want have=""
    want="$(sha256sum "$ROOT/installers/requirements.txt" | cut -d' ' -f1)"
    [[ -f "$BRIEFCASE_VENV/.installed" ]] && have="$(cat "$BRIEFCASE_VENV/.installed")"
    [[ "$want" == "$have" ]] && return 0
    say "creating the build venv (/usr/bin/python3, briefcase)"
    rm -rf "$BRIEFCASE_VENV"
    /usr/bin/python3 -m venv "$BRIEFCASE_VENV"
    "$BRIEFCASE_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -r "$ROOT/installers/requirements.txt" || die "pip install of the build tools failed"
    printf '%s\n' "$want" >"$BRIEFCASE_VENV/.installed"
}

# A copy of the tree as git sees it (no .venv, no build output), with the version overridden if asked.
stage_tree() {
    say "copying the tree to $STAGE"
    rm -rf "$STAGE"
    mkdir -p "$STAGE"
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' path; do [[ -e "$path" ]] && printf '%s\0' "$path"; done \
        | xargs -0 cp --parents -t "$STAGE")
    if [[ -n "${COALESCE_VERSION:-}" ]]; then
        say "version override: $COALESCE_VERSION"
        "$BRIEFCASE_VENV/bin/python" "$ROOT/installers/linux/set_version.py" "$STAGE" "$COALESCE_VERSION"
    fi
}

# The vendored template when shared/vendor/ has it (offline machines), Briefcase's default otherwise.
template_overrides() {
    local dir bundle=""
    for dir in "$ROOT/../shared/vendor" "$ROOT/../../shared/vendor" "${COALESCE_VENDOR_DIR:-}"; do
        if [[ -n "$dir" && -f "$dir/briefcase-linux-system-template.bundle" ]]; then
            bundle="$dir/briefcase-linux-system-template.bundle"
        fi
    done
    if [[ -z "$bundle" ]]; then
        say "no vendored template: Briefcase fetches its own" >&2
        return 0
    fi
    say "using the vendored template $bundle ($TEMPLATE_BRANCH)" >&2
    rm -rf "$WORK/template"
    git clone -q "$bundle" "$WORK/template"
    printf '%s\n' "-C" "template=\"$WORK/template\"" "-C" "template_branch=\"$TEMPLATE_BRANCH\""
}

build_linux() {
    command -v dpkg-query >/dev/null 2>&1 || die "the Linux packages are built on Debian or Ubuntu"
    install_build_packages
    mkdir -p "$WORK" "$DIST"
    make_briefcase_venv
    stage_tree
    local -a overrides=()
    mapfile -t overrides < <(template_overrides)
    local briefcase="$BRIEFCASE_VENV/bin/briefcase"
    local app started
    for app in "${APPS[@]}"; do
        started=$SECONDS
        say "$app: create"
        rm -rf "$STAGE/build/$app" "$STAGE/dist"
        (cd "$STAGE" && "$briefcase" create linux system --no-input -a "$app" "${overrides[@]}")
        "$BRIEFCASE_VENV/bin/python" "$ROOT/installers/linux/bundle.py" add-files "$STAGE" "$app"
        say "$app: build"
        (cd "$STAGE" && "$briefcase" build linux system --no-input -a "$app")
        say "$app: package"
        # Briefcase's .deb is unpacked again by bundle.py finish-deb: no point compressing it twice.
        (cd "$STAGE" && DPKG_DEB_COMPRESSOR_TYPE=none \
            "$briefcase" package linux system --no-input -a "$app" --adhoc-sign)
        local deb
        deb="$(find "$STAGE/dist" -maxdepth 1 -name "${app}_*.deb" -print -quit)"
        [[ -n "$deb" ]] || die "$app: Briefcase wrote no .deb"
        local out
        out="$DIST/$(basename "$deb")"
        "$BRIEFCASE_VENV/bin/python" "$ROOT/installers/linux/bundle.py" finish-deb "$STAGE" "$app" "$out"
        say "$app: $out ($(du -h "$out" | cut -f1)) in $((SECONDS - started)) s"
    done
}

case "${1:-}" in
    linux) build_linux ;;
    windows | macOS | macos)
        die "$1 packages are built on $1 itself: see .github/workflows/installers.yml and installers/README.md" ;;
    *) die "usage: bash installers/build.sh linux" ;;
esac
