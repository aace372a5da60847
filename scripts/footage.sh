#!/usr/bin/env bash
# Real footage for the picture-diagnosis tests and bench (docs/performance.md): OpenCV's sample
# videos from Debian's opencv-doc package (a fixed camera over a street with people walking,
# vtest.avi; a tree against the sky in wind, tree.avi). Only the two files are kept, in
# var/footage/; the package itself is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=var/footage
want=(vtest.avi tree.avi)
have=1
for f in "${want[@]}"; do [ -s "$out/$f" ] || have=0; done
[ "$have" = 1 ] && exit 0
echo "setup: fetching the sample footage (Debian opencv-doc)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -qq opencv-doc >/dev/null 2>&1) || {
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && (cd "$tmp" && apt-get download -qq opencv-doc)
}
mkdir -p "$out" "$tmp/x"
paths=()
for f in "${want[@]}"; do paths+=("./usr/share/doc/opencv-doc/examples/data/$f"); done
dpkg-deb --fsys-tarfile "$tmp"/opencv-doc_*.deb | tar -x -C "$tmp/x" "${paths[@]}"
for f in "${want[@]}"; do mv "$tmp/x/usr/share/doc/opencv-doc/examples/data/$f" "$out/$f"; done
