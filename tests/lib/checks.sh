# shellcheck shell=bash
# Shared by the shell-driven suites (tests/stack/run.sh, tests/deploy_e2e/run.sh): named checks
# that count passes and failures, and the closing `N passed, M failed` line.
# Source it after setting CHECKS_PREFIX (the tag on log lines, e.g. "stack").

passed=0
failed=0
failures=()

log() { printf '[%s] %s\n' "$CHECKS_PREFIX" "$*"; }
figure() { printf '[%s] figure: %s\n' "$CHECKS_PREFIX" "$*"; }

check() {
    # check NAME COMMAND...: runs the command; it prints a reason on failure.
    local name=$1 out t0=$SECONDS took=""
    shift
    if out=$("$@" 2>&1); then
        passed=$((passed + 1))
        ((SECONDS - t0 >= 2)) && took=" ($((SECONDS - t0)) s)"
        printf 'ok    %s%s\n' "$name" "$took"
    else
        failed=$((failed + 1))
        failures+=("$name")
        printf 'FAIL  %s (%s s)\n' "$name" "$((SECONDS - t0))"
        [[ -n $out ]] && printf '      %s\n' "${out//$'\n'/$'\n'      }"
    fi
    return 0
}

# The closing line; the exit status is non-zero when any check failed.
checks_summary() {
    echo
    if ((failed > 0)); then
        log "failed: ${failures[*]}"
    fi
    echo "$passed passed, $failed failed"
    ((failed == 0))
}
