#!/usr/bin/env bash
# Installs segwatch as a service: the binary into PREFIX/bin (everything it loads at run time
# is built in, or comes from Debian's packages: FFmpeg, OpenBLAS, FreeType, DejaVu), the units
# into ROOT/etc/systemd/system with ExecStart pointing at that binary, and the example config
# into ROOT/etc/segwatch/segwatch.toml unless one is there already.
#
#   sudo systemd/install.sh                      # PREFIX /usr/local, ROOT /
#   systemd/install.sh --prefix DIR --root DIR   # elsewhere (packaging, tests)
#
# Builds the release binary first if there is none.
set -euo pipefail
prefix=/usr/local
root=/
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --root) root="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (expected --prefix DIR, --root DIR)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
if [ ! -x .build/release/segwatch ]; then
  .ci/install
  swift build -c release --product segwatch
fi
binary="$prefix/bin/segwatch"
install -D -m 755 .build/release/segwatch "$binary"
units="$root/etc/systemd/system"
mkdir -p "$units"
for unit in segwatch.service segwatch@.service; do
  sed "s|/usr/local/bin/segwatch|$binary|g" "systemd/$unit" > "$units/$unit"
  chmod 644 "$units/$unit"
done
config="$root/etc/segwatch/segwatch.toml"
if [ ! -e "$config" ]; then
  install -D -m 640 systemd/segwatch.toml "$config"
fi
# The shared libraries the binary needs, all from Debian's packages (.ci/install's -dev ones
# bring them): a missing one is named now rather than at the service's start.
if missing=$(ldd "$binary" | grep "not found"); then
  echo "install.sh: $binary cannot find: $missing" >&2
  exit 1
fi
echo "installed $binary, $units/segwatch.service, $units/segwatch@.service and $config"
echo "next: fetch the models (SEGWATCH_CACHE=/var/cache/segwatch $binary models fetch mobile_sam clip_vit_b16),"
echo "      edit $config, check it ($binary config check $config), then: systemctl enable --now segwatch"
