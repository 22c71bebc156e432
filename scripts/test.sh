#!/usr/bin/env bash
# The test command: setup (packages + build), then every test through ctest.
# Exit status is ctest's. Extra arguments go to ctest (e.g. -R Prefilter).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd build
set +e
ctest --output-on-failure "$@"
rc=$?
set -e
# Verifier-visible program sizes, so a jump is visible in review and CI logs.
../ci/verifier-report.sh || true
exit $rc
