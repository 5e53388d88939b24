#!/usr/bin/env bash
# Restores the published history: copies history.jsonl (and bench-history.jsonl, the benchmarks'
# nights) from the pages branch of the remote into
# REPORTS_DIR, so the merge adds the night to every earlier one. Run inside a clone of the
# repository (CI: after actions/checkout).
#   usage: ci/restore-history.sh REPORTS_DIR
#   env:   PAGES_BRANCH (default gh-pages), PAGES_REMOTE (default origin)
# A repository without the branch yet starts a new history. Any other failure to read the remote
# stops here (exit 1): publishing a history of one night over the real one would lose it.
set -euo pipefail
reports=${1:?usage: ci/restore-history.sh REPORTS_DIR}
branch=${PAGES_BRANCH:-gh-pages}
remote=${PAGES_REMOTE:-origin}
mkdir -p "$reports"

status=0
git ls-remote --exit-code --heads "$remote" "refs/heads/$branch" >/dev/null || status=$?
if [ "$status" -eq 2 ]; then
  echo "no $branch branch on $remote yet: the first night starts a new history"
  exit 0
elif [ "$status" -ne 0 ]; then
  echo "cannot read $remote (git ls-remote exit $status); not starting a new history over the published one" >&2
  exit 1
fi
git fetch --quiet --depth=1 "$remote" "refs/heads/$branch"
if git cat-file -e FETCH_HEAD:history.jsonl 2>/dev/null; then
  git show FETCH_HEAD:history.jsonl > "$reports/history.jsonl"
  echo "restored $(wc -l < "$reports/history.jsonl") history lines from $branch"
else
  echo "$branch has no history.jsonl: starting a new history"
fi
if git cat-file -e FETCH_HEAD:bench-history.jsonl 2>/dev/null; then
  git show FETCH_HEAD:bench-history.jsonl > "$reports/bench-history.jsonl"
  echo "restored $(wc -l < "$reports/bench-history.jsonl") bench lines from $branch"
fi
