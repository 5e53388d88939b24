#!/usr/bin/env bash
# Publishes a merged site (the reports folder `npm run dashboard` wrote) to the pages branch of the
# remote. Run inside a clone of the repository (CI: the publish job, which has no `npm ci`: this is
# git and coreutils only).
#   usage: ci/publish-pages.sh SITE_DIR [KEEP_NIGHTS]    (KEEP_NIGHTS default 30)
#   env:   PAGES_BRANCH (default gh-pages), PAGES_REMOTE (default origin), PAGES_MESSAGE
#
# Starting from what the branch holds now: each run folder of the site (nightly/<night>/<suite>/<run>/)
# replaces its namesake whole (a re-run leaves no stale files), index.html, history.jsonl, bench-history.jsonl and
# plotly.js are replaced, night folders beyond the newest KEEP_NIGHTS are deleted, and .nojekyll
# is added (Pages then serves the files as they are). The result is pushed as a single commit
# with no parent, so the branch never grows past the window, with a lease on the commit read:
# if another publish moved the branch meanwhile, this one fails rather than undo it.
set -euo pipefail
site=${1:?usage: ci/publish-pages.sh SITE_DIR [KEEP_NIGHTS]}
keep=${2:-30}
branch=${PAGES_BRANCH:-gh-pages}
remote=${PAGES_REMOTE:-origin}
[[ $keep =~ ^[1-9][0-9]*$ ]] || { echo "KEEP_NIGHTS must be a positive whole number, not '$keep'" >&2; exit 2; }
[ -f "$site/index.html" ] || { echo "$site holds no index.html: not a merged site" >&2; exit 2; }
site=$(cd "$site" && pwd) || exit 2
gitdir=$(git rev-parse --absolute-git-dir)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pages="$work/pages"
mkdir -p "$pages"

# What the branch holds now (empty on the first night). Failing to read it is not "empty".
lease=""
status=0
git ls-remote --exit-code --heads "$remote" "refs/heads/$branch" >/dev/null || status=$?
if [ "$status" -eq 0 ]; then
  git fetch --quiet --depth=1 "$remote" "refs/heads/$branch"
  lease=$(git rev-parse FETCH_HEAD)
  git archive FETCH_HEAD | tar -x -C "$pages"
elif [ "$status" -ne 2 ]; then
  echo "cannot read $remote (git ls-remote exit $status); not publishing over what it holds" >&2
  exit 1
fi

# Run folders replace their namesakes whole.
if [ -d "$site/nightly" ]; then
  while IFS= read -r -d '' run; do
    rel=${run#"$site"/}
    rm -rf "${pages:?}/$rel"
    mkdir -p "$pages/$(dirname "$rel")"
    cp -R "$run" "$pages/$rel"
  done < <(find "$site/nightly" -mindepth 3 -maxdepth 3 -type d -print0)
fi
for file in index.html history.jsonl bench-history.jsonl plotly.js; do
  if [ -f "$site/$file" ]; then cp "$site/$file" "$pages/$file"; fi
done
touch "$pages/.nojekyll"

# The window: the newest KEEP_NIGHTS night folders stay.
if [ -d "$pages/nightly" ]; then
  find "$pages/nightly" -mindepth 1 -maxdepth 1 -type d -name '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' -printf '%f\n' |
    sort -r | tail -n +"$((keep + 1))" |
    while IFS= read -r night; do
      echo "pruning night $night (keeping the newest $keep)"
      rm -rf "${pages:?}/nightly/$night"
    done
fi

# One commit without parent, from a private index (the clone's own index and work tree stay
# untouched); the push runs from where the script was started, so a relative remote URL holds.
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-Parity nightly}" GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-parity-nightly@users.noreply.github.com}"
export GIT_COMMITTER_NAME="${GIT_COMMITTER_NAME:-$GIT_AUTHOR_NAME}" GIT_COMMITTER_EMAIL="${GIT_COMMITTER_EMAIL:-$GIT_AUTHOR_EMAIL}"
tree=$(cd "$pages" && GIT_DIR="$gitdir" GIT_WORK_TREE="$pages" GIT_INDEX_FILE="$work/index" git add -A --force . &&
  GIT_DIR="$gitdir" GIT_INDEX_FILE="$work/index" git write-tree)
commit=$(git commit-tree "$tree" -m "${PAGES_MESSAGE:-Parity nightly dashboard}")
git push --quiet --force-with-lease="refs/heads/$branch:$lease" "$remote" "$commit:refs/heads/$branch"
echo "published $(find "$pages/nightly" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l) nights to $branch ($commit)"
