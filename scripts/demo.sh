#!/usr/bin/env bash
# Installs what is needed, builds vdistream and runs the demo: a synthetic desktop served over
# SPICE on 127.0.0.1:5900 with a fresh password; it prints the remote-viewer command to paste.
# Ctrl-C stops it. Extra arguments go to vdistreamd, e.g. --record demo.mp4 --frames 300
# (see ./build/service/vdistreamd --help).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build" -j "$(nproc)"
exec "$root/build/service/vdistreamd" --demo "$@"
