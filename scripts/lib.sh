# Shared by scripts/start.sh and scripts/test.sh: make the checkout runnable on a
# fresh machine (Node 24 from node_modules, dependencies installed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# Install again only when package-lock.json changed since the last install.
# `npm install` rather than `npm ci`: the registry reachable here lacks some of
# biome's optional per-platform packages, which `npm ci` treats as a lock file
# out of sync; `npm install` skips them and leaves the lock file as it is.
if ! cmp -s package-lock.json node_modules/.prepull-lock 2>/dev/null; then
  echo "[setup] installing npm dependencies (Node 24 comes with them)" >&2
  npm install --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.prepull-lock
fi
export PATH="$root/node_modules/.bin:$PATH"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[[ "$node_major" == 24 ]] || { echo "expected Node 24 from node_modules/.bin, got $(node --version)" >&2; exit 1; }
