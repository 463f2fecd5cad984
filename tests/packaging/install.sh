#!/usr/bin/env bash
# Installs the Debian package of a build directory on a fresh Debian 12 system: a minimal root
# made by debootstrap (cached; every run installs into a new copy of it), where only the
# package's declared dependencies are installed with apt-get, then `dpkg -i` the package. Checks
# that it installs, that its programs run there, that the conffile and units are in place and
# nothing was enabled or started, then that `dpkg --purge` removes it cleanly.
#   tests/packaging/install.sh BUILD_DIR
# Needs root and Debian's archive (as scripts/deps.sh does); exits 77 (skipped) when not root.
set -uo pipefail

build=$(cd "${1:?usage: install.sh BUILD_DIR}" && pwd)
((EUID == 0)) || { echo "SKIP: needs root (debootstrap, chroot)"; exit 77; }
command -v debootstrap >/dev/null || { echo "FAIL: debootstrap is not installed (scripts/deps.sh installs it)"; exit 1; }
cache=${EBB_TEST_CACHE:-/var/cache/ebb-test}
base=$cache/bookworm-minbase
mirror=${EBB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d /var/tmp/ebb-install.XXXXXX)
root=$work/root
cleanup() {
  umount "$root/dev" "$root/proc" 2>/dev/null
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
source "$(dirname "${BASH_SOURCE[0]}")/check.sh"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

if [[ ! -f $base/.complete ]]; then
  echo "debootstrap --variant=minbase bookworm (cached in $base afterwards)"
  rm -rf "$base"; mkdir -p "$cache"
  if ! debootstrap --variant=minbase bookworm "$base" "$mirror" >"$work/debootstrap.log" 2>&1; then
    echo "FAIL: debootstrap"; tail -20 "$work/debootstrap.log"; exit 1
  fi
  touch "$base/.complete"
fi
cp -a "$base" "$root" && rm -f "$root/.complete"
mount -t proc proc "$root/proc" && mount --bind /dev "$root/dev" || { echo "FAIL: mounts in the scratch root"; exit 1; }

(cd "$build" && cpack -G DEB -B "$work/pkg" >"$work/cpack.log" 2>&1) || { echo "FAIL: cpack"; tail "$work/cpack.log"; exit 1; }
deb=$(find "$work/pkg" -maxdepth 1 -name 'ebb_*.deb' | head -1)
[[ -n $deb ]] || { echo "FAIL: cpack made no ebb_*.deb"; exit 1; }
cp "$deb" "$root/tmp/ebb.deb"
# The Depends field, without versions or alternatives: what an administrator's apt would pull.
mapfile -t depends < <(dpkg-deb --field "$deb" Depends | tr ',' '\n' | sed -E 's/\(.*\)//; s/\|.*//; s/ //g' | grep .)
echo "package: $(basename "$deb"); depends: ${depends[*]}"

check "apt-get installs the declared dependencies" in_root sh -c \
  'apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" </dev/null' sh "${depends[@]}"
check "dpkg -i installs the package" in_root dpkg -i /tmp/ebb.deb
check "dpkg reports it installed" in_root sh -c "dpkg-query -W -f='\${Status}' ebb | grep -qx 'install ok installed'"
for program in ebbd ebbctl ebb-manager ebb-sim; do
  check "$program runs on the fresh system (--help)" in_root "/usr/bin/$program" --help
done
check "ebbd --version" in_root /usr/bin/ebbd --version
check "the conffile /etc/ebb/ebbd.toml is installed" test -s "$root/etc/ebb/ebbd.toml"
# One dry-run tick over an empty cgroup root: exits non-zero if the packaged config is invalid.
mkdir -p "$root/tmp/cg" "$root/tmp/state"
check "the default config is in place and ebbd accepts it" in_root /usr/bin/ebbd --config /etc/ebb/ebbd.toml \
  --once --dry-run --cgroup-root /tmp/cg --state-dir /tmp/state --socket /tmp/state/sock
check "the units are installed" test -f "$root/usr/lib/systemd/system/ebbd.service" -a -f "$root/usr/lib/systemd/system/ebb-manager.service"
check "installing enabled nothing" sh -c "! find '$root/etc/systemd/system' -name 'ebb*' | grep -q ."
check "dpkg --purge removes it" in_root dpkg --purge ebb
check "no program or unit is left" sh -c "! ls '$root'/usr/bin/ebb* '$root'/usr/lib/systemd/system/ebb* 2>/dev/null | grep -q ."
check "purge removed the config" test ! -e "$root/etc/ebb/ebbd.toml"

echo "$passed passed, $failed failed"
((failed == 0))
