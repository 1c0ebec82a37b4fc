#!/usr/bin/env bash
# Trunk's post-build hook (Trunk.toml): makes this build's service worker and stamps its id.
#   - build id: 16 hex digits of a sha256 over every file Trunk wrote (names and contents);
#   - index.html: `<meta name="sentiment-build" content="dev">` gets the id (the page announces
#     a build that differs from the last visit's);
#   - sw.js: frontend/sw.js with the id and the list of the build's files, which it precaches
#     for offline visits.
# Trunk runs it from the project root with TRUNK_STAGING_DIR set (the dist/ being written).
set -euo pipefail
: "${TRUNK_STAGING_DIR:?run by trunk build (see Trunk.toml)}"
src=$PWD
cd "$TRUNK_STAGING_DIR"
mapfile -t files < <(find . -type f ! -name sw.js | sed 's|^\./||' | LC_ALL=C sort)
build=$(for f in "${files[@]}"; do printf '%s  %s\n' "$(sha256sum < "$f" | cut -d' ' -f1)" "$f"; done \
  | sha256sum | cut -c1-16)
grep -q '<meta name="sentiment-build" content="dev"' index.html \
  || { echo "trunk-post-build: index.html has no sentiment-build meta" >&2; exit 1; }
sed -i "s|<meta name=\"sentiment-build\" content=\"dev\"|<meta name=\"sentiment-build\" content=\"$build\"|" index.html
list=$(printf '"%s",' "${files[@]}")
sed -e "s|^const BUILD = \"__BUILD__\";\$|const BUILD = \"$build\";|" \
    -e "s|^const SHELL = \\[\"__SHELL__\"\\];\$|const SHELL = [${list%,}];|" "$src/frontend/sw.js" > sw.js
if grep -q '__SHELL__\|__BUILD__' sw.js; then
  echo "trunk-post-build: frontend/sw.js no longer has the lines this script fills in" >&2
  exit 1
fi
echo "trunk-post-build: build $build, ${#files[@]} files in the service worker's cache"
