#!/usr/bin/env bash
# Runs a command as root inside a Debian 6.1 kernel (qemu, software emulation) that has
# cgroup v2 with cpu/memory/io/pids/cpuset, BPF, BTF and tracefs, on the host's own
# filesystem (read-only; /tmp, /run, /dev/shm are fresh tmpfs; OUTDIR is writable).
# See docs/vm.md. Exit status: the command's; 124 on timeout; 125 when the VM itself fails;
# 141 when our stdout/stderr closed under us.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: scripts/vm-run.sh [-m MB] [-t SECONDS] [-o OUTDIR] [-e VAR[=VALUE]]... [-v] -- COMMAND...

Runs COMMAND as root in a qemu VM (Debian 6.1 kernel, cgroup v2, BPF) on the host's
filesystem, with the host's current directory as cwd. Streams its stdout/stderr and
exits with its status (124: timeout, 125: the VM failed to boot or run,
141: vm-run.sh's stdout or stderr was closed).

  -m MB        guest memory (default 2048)
  -t SECONDS   kill the VM after this long, boot included (default 600)
  -o OUTDIR    host directory mounted writable at the same path in the guest and
               exported there as $EBB_VM_OUT (default: $EBB_VM_OUT if set on the
               host, else a fresh temporary directory removed afterwards)
  -e VAR       pass host variable VAR into the guest (repeatable); -e VAR=VALUE sets it
  -v           print boot timing and stream the guest console to stderr
EOF
}

die() {
	echo "vm-run.sh: $*" >&2
	exit 125
}

mem=2048
timeout_s=600
outdir=${EBB_VM_OUT:-}
verbose=0
passenv=()
while getopts ':m:t:o:e:vh' opt; do
	case $opt in
	m) mem=$OPTARG ;;
	t) timeout_s=$OPTARG ;;
	o) outdir=$OPTARG ;;
	e) passenv+=("$OPTARG") ;;
	v) verbose=1 ;;
	h)
		usage
		exit 0
		;;
	:) usage >&2 && die "-$OPTARG needs a value" ;;
	*) usage >&2 && die "unknown flag -$OPTARG" ;;
	esac
done
shift $((OPTIND - 1))
[[ ${1:-} == -- ]] && shift
(($#)) || { usage >&2 && die "no COMMAND given"; }
if ! [[ $mem =~ ^[0-9]+$ ]] || ((mem < 256)); then
	die "-m wants a size in MB (>= 256), got '$mem'"
fi
if ! [[ $timeout_s =~ ^[0-9]+$ ]] || ((timeout_s == 0)); then
	die "-t wants whole seconds > 0, got '$timeout_s'"
fi

# Already inside the VM (e.g. a VM test calling a script that calls vm-run.sh): run here.
if [[ ${EBB_IN_VM:-} == 1 ]]; then
	if [[ -n $outdir ]]; then
		mkdir -p "$outdir"
		export EBB_VM_OUT=$outdir
	fi
	for v in "${passenv[@]}"; do
		[[ $v == *=* ]] && export "${v?}"
	done
	exec timeout -k 5 "$timeout_s" "$@"
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${EBB_VM_CACHE:-$repo/.cache/vm}
init_src=$repo/scripts/vm/init
# Loaded in this order by the guest's /init; virtio_console carries COMMAND's output.
modules=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
	netfs fscache 9pnet 9pnet_virtio 9p virtio_console)

say() { if ((verbose)); then echo "vm-run.sh: $*" >&2; fi; }
now() { date +%s.%N; }
t_start=$(now)

# Runs a command quietly; on failure shows its output and dies with the given message.
quietly() {
	local msg=$1 log
	shift
	log=$(mktemp)
	if ! "$@" >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		die "$msg"
	fi
	rm -f "$log"
}

# The linux-image-X-amd64 package that linux-image-amd64 depends on ('' if apt can't say).
resolve_kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '!found && $1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; found = 1 }'
}

apt_update() {
	[[ $(id -u) -eq 0 ]] || die "apt lists are missing or stale and apt-get update needs root"
	say "apt-get update"
	quietly "apt-get update failed" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
}

cached_kernel() {
	find "$cache/kernel" -mindepth 2 -maxdepth 2 -name complete -printf '%h\n' 2>/dev/null | sort | tail -n1
}

# Sets kdir to a cache directory holding vmlinuz and the modules (plain .ko) of the kernel.
fetch_kernel() {
	local pkg resolved=$cache/kernel/resolved rc
	# apt-cache is slow: trust the last answer until the apt lists change.
	if [[ -f $resolved && $resolved -nt /var/lib/apt/lists ]]; then
		pkg=$(<"$resolved")
	else
		pkg=$(resolve_kernel_pkg)
	fi
	if [[ -z $pkg ]]; then
		# Offline or no apt lists: any complete cached kernel will do.
		kdir=$(cached_kernel)
		[[ -n $kdir ]] && return
		apt_update
		pkg=$(resolve_kernel_pkg)
		[[ -n $pkg ]] || die "cannot resolve the kernel package: apt-cache depends linux-image-amd64 names none"
	fi
	kdir=$cache/kernel/$pkg
	if [[ -f $kdir/complete && $(<"$kdir/complete") == "${modules[*]} +vmlinux" ]]; then
		echo "$pkg" >"$resolved"
		return
	fi
	set +e
	(
		set -e
		install_kernel "$pkg"
	)
	rc=$?
	set -e
	((rc == 0)) && return
	# A newer kernel could not be had (offline?): an older cached one still does the job.
	kdir=$(cached_kernel)
	[[ -n $kdir ]] || exit "$rc"
	echo "vm-run.sh: warning: using the cached ${kdir##*/} instead" >&2
}

# Downloads (or takes from the cache) the .deb of kernel package $1 and unpacks what the VM
# needs into $cache/kernel/$1, replacing any other kernel there.
install_kernel() {
	local pkg=$1 want="${modules[*]} +vmlinux"
	say "fetching $pkg"
	local tmp deb
	mkdir -p "$cache/debs"
	# We hold the cache lock: any other fetch.* is left over from a killed run.
	find "$cache" -maxdepth 1 -name 'fetch.*' -exec rm -rf {} +
	tmp=$(mktemp -d "$cache/fetch.XXXXXX")
	# shellcheck disable=SC2064  # tmp is local: expand it now
	trap "rm -rf $(printf %q "$tmp")" EXIT # this runs in a subshell of its own
	deb=$(find "$cache/debs" -maxdepth 1 -name "${pkg}_*.deb" | head -n1)
	if [[ -z $deb ]]; then
		if ! (cd "$tmp" && apt-get download -o APT::Sandbox::User=root "$pkg") >"$tmp/log" 2>&1; then
			apt_update
			(cd "$tmp" && apt-get download -o APT::Sandbox::User=root "$pkg") >"$tmp/log" 2>&1 ||
				{ cat "$tmp/log" >&2 && die "apt-get download $pkg failed"; }
		fi
		deb=$(find "$tmp" -maxdepth 1 -name "${pkg}_*.deb" | head -n1)
		[[ -n $deb ]] || die "apt-get download $pkg produced no .deb"
		# Keep only this kernel's .deb, so a changed module list needs no network.
		find "$cache/debs" -maxdepth 1 -name '*.deb' -delete
		mv "$deb" "$cache/debs/"
		deb=$cache/debs/${deb##*/}
	fi
	quietly "dpkg -x $deb failed" dpkg -x "$deb" "$tmp/x"

	local new=$tmp/kernel vmlinuz m f
	mkdir -p "$new/modules"
	vmlinuz=$(find "$tmp/x/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n1)
	[[ -n $vmlinuz ]] || die "$pkg has no boot/vmlinuz-*"
	cp "$vmlinuz" "$new/vmlinuz"
	cp "$tmp/x/boot/config-"* "$new/config" 2>/dev/null || true
	extract_vmlinux "$new"
	for m in "${modules[@]}"; do
		f=$(find "$tmp/x/lib/modules" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" \) | head -n1)
		[[ -n $f ]] || die "$pkg has no module $m"
		case $f in
		*.xz) xz -dc "$f" >"$new/modules/$m.ko" ;;
		*.zst) zstd -qdc "$f" >"$new/modules/$m.ko" ;;
		*.gz) gzip -dc "$f" >"$new/modules/$m.ko" ;;
		*) cp "$f" "$new/modules/$m.ko" ;;
		esac
	done
	echo "$want" >"$new/complete"

	# Keep this kernel only.
	rm -rf "$cache/kernel"
	mkdir -p "$cache/kernel"
	mv "$new" "$cache/kernel/$pkg"
	echo "$pkg" >"$cache/kernel/resolved"
	rm -rf "$tmp"
}

# Under TCG the kernel's own decompression of vmlinuz takes ~10 s. A kernel with PVH
# support boots straight from the ELF inside it, so keep that as $1/vmlinux when we can.
extract_vmlinux() {
	local dir=$1 magic off tool
	grep -qx 'CONFIG_PVH=y' "$dir/config" 2>/dev/null || return 0
	for magic in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
		tool=${magic%%:*}
		off=$(LC_ALL=C grep -obUaP -m1 "${magic#*:}" "$dir/vmlinuz" | head -n1 | cut -d: -f1) || true
		[[ -n $off ]] || continue
		case $tool in
		xz) tail -c +$((off + 1)) "$dir/vmlinuz" | xz -dc --single-stream >"$dir/vmlinux" 2>/dev/null || true ;;
		zstd) tail -c +$((off + 1)) "$dir/vmlinuz" | zstd -qdc >"$dir/vmlinux" 2>/dev/null || true ;;
		gzip) tail -c +$((off + 1)) "$dir/vmlinuz" | gzip -dc >"$dir/vmlinux" 2>/dev/null || true ;;
		esac
		[[ $(head -c4 "$dir/vmlinux" 2>/dev/null | od -An -tx1 | tr -d ' ') == 7f454c46 ]] && return 0
		break
	done
	rm -f "$dir/vmlinux"
}

# Sets initrd to an initramfs (busybox + modules + init) that matches its inputs.
build_initramfs() {
	local busybox key stage
	busybox=$(command -v busybox || true)
	[[ -x $busybox ]] || die "busybox not found (install busybox-static: scripts/deps.sh)"
	[[ $(ldd "$busybox" 2>&1 || true) == *'not a dynamic executable'* ]] ||
		die "$busybox is not static (install busybox-static: scripts/deps.sh)"
	key=$(cat "$busybox" "$init_src" "${BASH_SOURCE[0]}" "$kdir"/modules/*.ko | sha256sum | cut -c1-16)
	initrd=$cache/initramfs-$key.cpio
	[[ -f $initrd ]] && return

	say "building initramfs $initrd"
	stage=$(mktemp -d "$cache/stage.XXXXXX")
	mkdir -p "$stage"/{bin,dev,proc,sys,host,ctl,tmp,lib/modules}
	cp "$busybox" "$stage/bin/busybox"
	cp "$init_src" "$stage/init"
	chmod 755 "$stage/init"
	cp "$kdir"/modules/*.ko "$stage/lib/modules/"
	echo "${modules[*]}" >"$stage/lib/modules/order"
	(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$stage.cpio"
	rm -rf "$stage"
	# Runs that are starting may still read an older one: only prune stale ones.
	find "$cache" -maxdepth 1 -name 'initramfs-*.cpio' -mmin +60 -delete
	mv "$stage.cpio" "$initrd"
}

command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (run scripts/deps.sh)"
mkdir -p "$cache"
exec {lockfd}>"$cache/.lock"
flock "$lockfd"
fetch_kernel
build_initramfs
flock -u "$lockfd"
exec {lockfd}>&-
t_ready=$(now)

# Per-run state: the control share, FIFOs for the guest's console/stdout/stderr, logs.
ctl=$(mktemp -d "${TMPDIR:-/tmp}/ebb-vm.XXXXXX")
own_out=0
if [[ -z $outdir ]]; then
	outdir=$(mktemp -d "${TMPDIR:-/tmp}/ebb-vm-out.XXXXXX")
	own_out=1
fi
mkdir -p "$outdir"
outdir=$(realpath "$outdir")

qemu_pid=
readers=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	[[ -n $qemu_pid ]] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
	for f in console stdout stderr; do
		[[ -p $ctl/$f ]] && { exec {fd}<>"$ctl/$f" && exec {fd}>&-; }
	done
	((${#readers[@]})) && wait "${readers[@]}" 2>/dev/null
	rm -rf "$ctl"
	((own_out)) && rm -rf "$outdir"
	return 0
}
trap cleanup EXIT
trap 'echo "vm-run.sh: interrupted; VM killed" >&2; exit 130' INT
trap 'echo "vm-run.sh: terminated; VM killed" >&2; exit 143' TERM HUP

q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
echo "EBB_OUT=$(q "$outdir")" >"$ctl/params"
# The guest's /tmp, /run and /dev/shm are fresh tmpfs: a checkout or a cwd living there (a CI
# clone in /tmp, say) is carried over by bind mounts, or the guest could not see it.
keep=()
for dir in "$(pwd)" "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"; do
	case $dir in /tmp/* | /run/* | /dev/shm/*) keep+=("$dir") ;; esac
done
echo "EBB_KEEP=$(q "${keep[*]}")" >>"$ctl/params"

envs=("PATH=$PATH" "HOME=${HOME:-/root}" TERM=dumb EBB_IN_VM=1 "EBB_VM_OUT=$outdir")
for v in "${passenv[@]}"; do
	if [[ $v == *=* ]]; then
		envs+=("$v")
	elif [[ $v =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
		[[ -v $v ]] && envs+=("$v=${!v}")
	else
		die "-e wants VAR or VAR=VALUE, got '$v'"
	fi
done
cwd=$(pwd)
{
	printf 'cd -- %q 2>/dev/null || { echo %q >&2; exit 125; }\n' "$cwd" \
		"vm-run.sh: cwd $cwd does not exist in the VM (/tmp, /run and /dev/shm are empty tmpfs there)"
	printf 'exec env -i --'
	printf ' %q' "${envs[@]}" "$@"
	printf '\n'
} >"$ctl/job.sh"

# The console without the firmware's terminal resets and escape codes.
clean_console() { sed -u 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g; s/\x1b//g; s/\r//g'; }

mkfifo "$ctl/console" "$ctl/stdout" "$ctl/stderr"
p9=security_model=none,multidevs=remap
kernel=$kdir/vmlinuz
[[ -f $kdir/vmlinux ]] && kernel=$kdir/vmlinux
monitor=none
[[ -n ${EBB_VM_MONITOR:-} ]] && monitor=unix:$EBB_VM_MONITOR,server,nowait
# shellcheck disable=SC2054  # commas are qemu's option syntax
qemu=(
	qemu-system-x86_64 -m "$mem" -smp 2 -accel "tcg,thread=${EBB_VM_TCG_THREAD:-multi}"
	-kernel "$kernel" -initrd "$initrd"
	# no_timer_check: under emulation on a loaded host the kernel's IO-APIC timer check can
	# miss its ticks and panic at boot ("IO-APIC + timer doesn't work"); seen here.
	-append "console=ttyS0 quiet panic=-1 no_timer_check ${EBB_VM_APPEND:-}"
	-nographic -no-reboot -nodefaults -no-user-config
	# A wedged guest says nothing on its console; its registers, through this monitor socket,
	# say where its CPUs spin (docs/vm.md, "A guest that hangs").
	-monitor "$monitor"
	-chardev "file,id=con,path=$ctl/console" -serial chardev:con
	-fsdev "local,id=h,path=/,$p9,readonly=on" -device virtio-9p-pci,fsdev=h,mount_tag=host
	-fsdev "local,id=c,path=$ctl,$p9" -device virtio-9p-pci,fsdev=c,mount_tag=ctl
	-fsdev "local,id=o,path=$outdir,$p9" -device virtio-9p-pci,fsdev=o,mount_tag=out
	-device virtio-serial-pci,id=vser
	-chardev "file,id=so,path=$ctl/stdout" -device virtserialport,bus=vser.0,chardev=so,name=ebb.stdout
	-chardev "file,id=se,path=$ctl/stderr" -device virtserialport,bus=vser.0,chardev=se,name=ebb.stderr
)
timeout -k 5 "$timeout_s" "${qemu[@]}" </dev/null >"$ctl/qemu.log" 2>&1 &
qemu_pid=$!

# qemu opens each FIFO when it starts (blocking until its reader is there). A reader
# that cannot write (our stdout closed, e.g. `vm-run.sh -- cmd | head`) stops the VM,
# as SIGPIPE would stop COMMAND.
if ((verbose)); then
	tee "$ctl/console.log" <"$ctl/console" | clean_console >&2 &
else
	cat <"$ctl/console" >"$ctl/console.log" &
fi
readers+=($!)
{ cat <"$ctl/stdout" || { touch "$ctl/broken-pipe" && kill "$qemu_pid" 2>/dev/null; }; } &
readers+=($!)
{ cat <"$ctl/stderr" >&2 || { touch "$ctl/broken-pipe" && kill "$qemu_pid" 2>/dev/null; }; } &
readers+=($!)

# qemu_pid is timeout(1)'s: it kills qemu after timeout_s (boot included) and returns 124.
qrc=0
wait "$qemu_pid" || qrc=$?
qemu_pid=
t_end=$(now)

# Let the readers drain; unblock any whose FIFO qemu never opened.
for f in console stdout stderr; do
	exec {fd}<>"$ctl/$f"
	exec {fd}>&-
done
wait "${readers[@]}" 2>/dev/null || true
readers=()

show_console() {
	((verbose)) && return
	if [[ -s $ctl/console.log ]]; then
		echo "vm-run.sh: last lines of the guest console:" >&2
		tail -n 40 "$ctl/console.log" | clean_console | awk '{ print "  | " $0 }' >&2
	fi
	if [[ -s $ctl/qemu.log ]]; then
		echo "vm-run.sh: qemu said:" >&2
		tail -n 20 "$ctl/qemu.log" | awk '{ print "  | " $0 }' >&2
	fi
}

if [[ -f $ctl/broken-pipe ]]; then
	exit 141
fi
if ((qrc == 124)); then
	if [[ -f $ctl/started ]]; then
		echo "vm-run.sh: timed out after ${timeout_s}s (boot included): COMMAND killed with the VM" >&2
	else
		echo "vm-run.sh: timed out after ${timeout_s}s: the VM had not finished booting; killed it" >&2
	fi
	# The kernel's own view of a hang (hung tasks, soft lockups, RCU stalls) is on the console.
	show_console
	exit 124
fi
if [[ -f $ctl/status ]]; then
	status=$(<"$ctl/status")
	[[ $status =~ ^[0-9]+$ ]] || die "guest wrote a malformed exit status '$status'"
	if ((verbose)) && [[ -f $ctl/timing ]]; then
		read -r g0 g1 <"$ctl/timing"
		awk -v start="$t_start" -v ready="$t_ready" -v end="$t_end" -v g0="$g0" -v g1="$g1" 'BEGIN {
			printf "vm-run.sh: cache check %.1fs; VM %.1fs = boot+shutdown %.1fs (kernel start to command: %.1fs) + command %.1fs\n",
				ready - start, end - ready, end - ready - (g1 - g0), g0, g1 - g0 }' >&2
	fi
	exit "$status"
fi

if [[ -s $ctl/error ]]; then
	msg="VM setup failed: $(<"$ctl/error")"
elif grep -q 'Kernel panic' "$ctl/console.log" 2>/dev/null; then
	msg="guest kernel panicked"
elif ((qrc != 0)); then
	msg="qemu exited with status $qrc"
else
	msg="VM stopped without reporting an exit status (failed to boot, or the guest crashed)"
fi
show_console
die "$msg"
