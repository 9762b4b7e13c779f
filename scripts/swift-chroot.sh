#!/usr/bin/env bash
# swift-chroot.sh — runs a command with Swift 6 (Debian trixie's `swiftlang`) in a chroot.
#
# Debian 12 has no Swift and trixie's toolchain needs glibc >= 2.38, so the toolchain lives
# in a trixie chroot (created on first use, then reused; see scripts/setup-toolchains.sh).
# The command runs in the current directory, which is bind-mounted at the same path inside
# the chroot, as are the directories listed in SWIFT_CHROOT_BINDS (colon-separated, e.g.
# the cargo target directory when it lies outside the working tree). /proc is mounted
# (swiftc cannot find its own libraries without it). Everything is unmounted on exit,
# whatever happens; runs are serialised with a lock so that one run never unmounts
# another's directories. The exit code of the command is passed on.
#
# usage: scripts/swift-chroot.sh <command...>
#        scripts/swift-chroot.sh --ensure      # only create the chroot if it is missing
#
# Environment:
#   SWIFT_ROOT          chroot location (default /var/cache/witan/swift-trixie)
#   SWIFT_CHROOT_BINDS  extra host directories to bind-mount, colon-separated
#   SWIFT_LD_LIBRARY_PATH  LD_LIBRARY_PATH inside the chroot
#   DEBIAN_MIRROR       Debian mirror for debootstrap (default: the host's apt source)
#   WITAN_SETUP_LOG     where debootstrap's output goes (default /var/cache/witan/setup.log)
set -euo pipefail

ROOT=${SWIFT_ROOT:-/var/cache/witan/swift-trixie}
LOG=${WITAN_SETUP_LOG:-/var/cache/witan/setup.log}
READY="$ROOT/.witan-ready"

die() { echo "swift-chroot: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (chroot, mount)"

# The Debian mirror the host already uses (deb822 or one-line format), so no host name is
# written down here.
host_mirror() {
  local f uri=""
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(awk '/^URIs:/{print $2; exit}' "$f")
    [ -n "$uri" ] && case "$uri" in *security*) uri="" ;; *) break ;; esac
  done
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || die "cannot find a Debian mirror in /etc/apt; set DEBIAN_MIRROR"
  echo "$uri"
}

# Mount points currently below $ROOT (deepest first).
mounts_below() {
  awk -v r="$ROOT/" 'index($2, r) == 1 {print $2}' /proc/self/mounts | sort -r
}

ensure_chroot() {
  if [ -f "$READY" ] && [ -x "$ROOT/usr/bin/swiftc" ]; then
    return 0
  fi
  mkdir -p "$(dirname "$LOG")"
  command -v debootstrap >/dev/null || {
    echo "swift-chroot: installing debootstrap (log: $LOG)" >&2
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap; } >>"$LOG" 2>&1 \
      || die "apt-get install debootstrap failed; see $LOG"
  }
  # A leftover mount (from a killed run) would make `rm -rf` reach into the host's files.
  local m
  for m in $(mounts_below); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  [ -z "$(mounts_below)" ] || die "cannot unmount everything below $ROOT; refusing to delete it"
  if [ -e "$ROOT" ]; then
    echo "swift-chroot: removing incomplete chroot $ROOT" >&2
    rm -rf --one-file-system "$ROOT"
  fi
  local mirror=${DEBIAN_MIRROR:-$(host_mirror)}
  echo "swift-chroot: creating the Swift chroot in $ROOT (about 2.6 GB; log: $LOG)" >&2
  mkdir -p "$(dirname "$ROOT")"
  debootstrap --variant=minbase --include=swiftlang,libc6-dev trixie "$ROOT" "$mirror" >>"$LOG" 2>&1 \
    || die "debootstrap failed; see $LOG"
  rm -f "$ROOT"/var/cache/apt/archives/*.deb
  [ -x "$ROOT/usr/bin/swiftc" ] || die "debootstrap finished but $ROOT/usr/bin/swiftc is missing; see $LOG"
  date -u +%FT%TZ >"$READY"
}

mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9

ensure_chroot
if [ "${1:-}" = "--ensure" ]; then
  exit 0
fi
[ $# -gt 0 ] || die "usage: $0 <command...> | --ensure"

WORK=$(pwd -P)
MOUNTED=()
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
  local i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTED[$i]}" 2>/dev/null || umount -l "${MOUNTED[$i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! mountpoint -q "$ROOT/proc"; then
  mount -t proc proc "$ROOT/proc"
  MOUNTED+=("$ROOT/proc")
fi

# Bind each directory once; a directory below one already bound is visible through it.
BOUND=()
bind_dir() {
  local dir b
  dir=$(cd "$1" && pwd -P) || die "no such directory: $1"
  for b in "${BOUND[@]}"; do
    case "$dir/" in "$b"/*) return 0 ;; esac
  done
  mkdir -p "$ROOT$dir"
  mount --bind "$dir" "$ROOT$dir"
  MOUNTED+=("$ROOT$dir")
  BOUND+=("$dir")
}
bind_dir "$WORK"
IFS=: read -r -a EXTRA <<<"${SWIFT_CHROOT_BINDS:-}"
for d in "${EXTRA[@]}"; do
  [ -n "$d" ] && bind_dir "$d"
done

set +e
# shellcheck disable=SC2016  # expanded by the inner bash
chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
  LD_LIBRARY_PATH="${SWIFT_LD_LIBRARY_PATH:-}" bash -c 'cd "$0" && exec "$@"' "$WORK" "$@"
rc=$?
set -e
exit $rc
