#!/usr/bin/env bash
# Set up, then run every check CI runs: lint, format, types, layer contracts and the test suite.
# Arguments go to pytest (e.g. `bash scripts/test.sh tests/test_fixtures.py -x`). Every step runs even when an
# earlier one fails, so one run shows all problems; the exit status is non-zero if any step failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# CI=true turns skipped tests into failures (tests/conftest.py); pass it on exactly as given.
if [[ -n "${CI+set}" ]]; then
    export CI
fi

bash scripts/setup.sh

export PATH="$ROOT/.venv/bin:$PATH"

passed=()
failed=()

run_step() {
    local name="$1"
    shift
    printf '\n==> %s\n' "$name"
    local rc=0
    "$@" || rc=$?
    if [[ $rc -eq 0 ]]; then
        passed+=("$name")
    else
        printf '==> %s failed (exit %d)\n' "$name" "$rc" >&2
        failed+=("$name")
    fi
}

# The suite takes about 15 minutes on 2 cores; a run that hangs is interrupted (SIGINT, so pytest still prints
# where it was and its summary) long before CI's own 90-minute limit would end it with nothing said.
PYTEST_BUDGET_SECONDS="${PYTEST_BUDGET_SECONDS:-3600}"

run_pytest() {
    local rc=0
    timeout --signal=INT --kill-after=120 "$PYTEST_BUDGET_SECONDS" python -m pytest -ra "$@" || rc=$?
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
        printf 'pytest did not finish within %ss and was interrupted: the traceback above shows where it hung\n' \
            "$PYTEST_BUDGET_SECONDS" >&2
        return "$rc"
    fi
    if [[ $rc -eq 5 ]]; then
        printf 'pytest collected no tests: the suite (or the selection passed to test.sh) is empty, which CI does not accept\n' >&2
        return 5
    fi
    return "$rc"
}

join() {
    local out="" item
    for item in "$@"; do
        out+="${out:+, }$item"
    done
    printf '%s' "${out:-none}"
}

started=$SECONDS
run_step "ruff check" ruff check .
run_step "ruff format --check" ruff format --check .
run_step "mypy" mypy
run_step "lint-imports" lint-imports
run_step "pytest" run_pytest "$@"
elapsed=$((SECONDS - started))

echo
if [[ ${#failed[@]} -eq 0 ]]; then
    printf 'test.sh: all %d steps passed (%s) in %ds\n' "${#passed[@]}" "$(join "${passed[@]}")" "$elapsed"
else
    printf 'test.sh: FAILED %d of %d steps: %s (passed: %s) in %ds\n' "${#failed[@]}" \
        $((${#failed[@]} + ${#passed[@]})) "$(join "${failed[@]}")" "$(join "${passed[@]}")" "$elapsed"
    exit 1
fi
