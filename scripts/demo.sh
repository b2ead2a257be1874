#!/usr/bin/env bash
# Installs what is needed, builds vdistream and runs the demo: a synthetic desktop, encoded
# with the software H.264 path and recorded to ./vdistream-demo.mp4. Extra arguments go to
# vdistreamd (see ./build/service/vdistreamd --help).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build" -j "$(nproc)"
exec "$root/build/service/vdistreamd" --demo "$@"
