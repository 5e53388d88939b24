#!/usr/bin/env bash
# The nightly alignment: every suite in baselines/ (or --suites a,b), each into
# reports/nightly/<date>/<suite>/<backend or auto>[-<N>steps]/, one line per suite in
# reports/history.jsonl, and the dashboard at reports/index.html. Arguments go to `npm run nightly`
# unchanged (--suites, --steps, --backend, --date, --reports).
# Exit: 0 all aligned, 1 a suite misaligned, 2 a suite's input unusable, 70 an internal fault.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 70
exec npm run --silent nightly -- "$@"
