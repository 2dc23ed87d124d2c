#!/usr/bin/env bash
# Self-test only: a guest test that fails. The runner must report it.
# shellcheck source=tests/guest/lib.sh
. "$LOFI_ROOT/tests/guest/lib.sh"
fail "deliberate failure for the runner self-test"
