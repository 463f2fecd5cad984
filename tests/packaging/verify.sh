#!/usr/bin/env bash
# Builds the Debian package of a build directory with CPack and checks it without installing it
# on the host: contents, conffiles, maintainer scripts, the units under `systemd-analyze verify`
# (against the package unpacked into a scratch root), and every packaged program's --help.
#   tests/packaging/verify.sh BUILD_DIR
set -uo pipefail

build=$(cd "${1:?usage: verify.sh BUILD_DIR}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/check.sh"

cpack_out=$(cd "$build" && cpack -G DEB -B "$work/pkg" 2>&1) || { echo "FAIL: cpack"; echo "$cpack_out"; echo "0 passed, 1 failed"; exit 1; }
deb=$(find "$work/pkg" -maxdepth 1 -name 'ebb_*.deb' | head -1)
[[ -n $deb ]] || { echo "FAIL: cpack made no ebb_*.deb"; echo "0 passed, 1 failed"; exit 1; }
echo "package: $(basename "$deb") ($(du -h "$deb" | cut -f1))"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/contents"

has_file() { grep -qxF "$1" "$work/contents"; }
is_conffile() { dpkg-deb --info "$deb" conffiles | grep -qxF "$1"; }
depends_on() { dpkg-deb --field "$deb" Depends | grep -q "$1"; }
valid_script() { dpkg-deb --info "$deb" "$1" >"$work/$1" && sh -n "$work/$1"; }
# systemd-analyze exits 0 on some warnings: any output is a failure.
verify_unit() {
  local out
  out=$(systemd-analyze verify --root="$root" "$1" 2>&1) || { echo "$out"; return 1; }
  [[ -z $out ]] || { echo "$out"; return 1; }
}
check "ebbd in /usr/bin" has_file /usr/bin/ebbd
check "ebbd.service in /usr/lib/systemd/system" has_file /usr/lib/systemd/system/ebbd.service
check "default config in /etc/ebb" has_file /etc/ebb/ebbd.toml
check "docs in /usr/share/doc/ebb" has_file /usr/share/doc/ebb/README.md
check "ebbd.toml is a conffile" is_conffile /etc/ebb/ebbd.toml
check "depends on the shared libraries it links" depends_on libc6
for script in postinst prerm postrm; do
  check "$script is valid sh" valid_script "$script"
done

# A scratch root: the package's files plus what the units refer to outside it (systemd's own
# targets, /bin/kill for ExecReload).
root=$work/root
dpkg-deb -x "$deb" "$root"
mkdir -p "$root/usr/lib/systemd" "$root/bin"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp /bin/kill "$root/bin/"
for unit in "$root"/usr/lib/systemd/system/ebb*.service; do
  check "systemd-analyze verify $(basename "$unit")" verify_unit "/usr/lib/systemd/system/$(basename "$unit")"
done
for program in "$root"/usr/bin/*; do
  check "$(basename "$program") --help" "$program" --help
done

echo "$passed passed, $failed failed"
((failed == 0))
