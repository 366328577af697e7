#!/usr/bin/env bash
# Fresh-machine check of the README's two commands: builds a minimal Debian 12 root with debootstrap from
# the archive apt uses here, copies the working tree in (tracked and untracked files, nothing ignored: no
# build/, data/, out/), and runs ./scripts/test.sh and then ./scripts/demo.sh inside it with chroot,
# printing each command's wall time and exit code.
#
# npm has no network configuration inside such a root, so what npm brings (the data tarballs, the pinned
# onnxruntime-node) is fetched on the host by the project's own scripts and copied into the root's tree
# first; the check covers the Debian packages, the build, the tests and the demo, and CI covers the npm
# fetch. Needs root (debootstrap, chroot, mounts); installs debootstrap if it is missing.
#
# Usage: scripts/fresh_check.sh [--root DIR] [--keep]
#   --root DIR  where to build the root (default /var/tmp/tilescale-fresh; emptied first)
#   --keep      leave the root in place afterwards (it is removed by default)
# The pristine debootstrap result is cached as DIR.base.tar (no project package in it) to save minutes
# on the next run; delete it to debootstrap anew.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
root=/var/tmp/tilescale-fresh
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fresh_check: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "fresh_check: needs root (debootstrap, chroot, mount)" >&2; exit 2; }
suite=bookworm
base_tar="$root.base.tar"

unmount_all() {
  local m
  # Deepest first; /dev and /sys are recursive binds.
  for m in dev sys proc; do
    if mountpoint -q "$root/$m" 2>/dev/null; then umount -R "$root/$m" || umount -lR "$root/$m" || true; fi
  done
}
cleanup() {
  unmount_all
  if [ "$keep" -eq 0 ] && [ -d "$root" ]; then rm -rf --one-file-system "$root"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The archive apt uses here: the first deb URI that serves bookworm, from deb822 .sources files or
# one-line sources.list entries.
mirror=$(
  { cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
      /^URIs:/ {uri=$2} /^Suites:/ {for (i = 2; i <= NF; i++) if ($i == "bookworm") print uri}'
    grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '{for (i = 2; i <= NF; i++) if ($i !~ /^\[/) {if ($(i+1) == "bookworm") print $i; break}}'
  } | head -n 1) || true  # a missing sources.list is no error
[ -n "$mirror" ] || { echo "fresh_check: no bookworm archive in /etc/apt sources" >&2; exit 2; }
echo "fresh_check: Debian archive $mirror (from /etc/apt)"

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "fresh_check: installing debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

# Downloads npm makes, fetched on the host with the project's own scripts.
bash "$src/scripts/fetch_data.sh"
bash "$src/scripts/install_ort.sh"

unmount_all
rm -rf --one-file-system "$root"
mkdir -p "$root"
t0=$(date +%s)
if [ -f "$base_tar" ]; then
  echo "fresh_check: minimal Debian 12 root from the cached $base_tar"
  tar -xf "$base_tar" -C "$root"
else
  echo "fresh_check: debootstrap --variant=minbase $suite $root $mirror"
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 || {
    tail -n 20 "$root.debootstrap.log" >&2; exit 1; }
  tar -cf "$base_tar.tmp" -C "$root" . && mv "$base_tar.tmp" "$base_tar"
fi
echo "fresh_check: root ready in $(( $(date +%s) - t0 )) s"

# The same archive configuration as here (suites, updates, security, validity settings), and DNS.
rm -f "$root"/etc/apt/sources.list
cp -a /etc/apt/sources.list.d/. "$root/etc/apt/sources.list.d/"
[ ! -f /etc/apt/sources.list ] || cp /etc/apt/sources.list "$root/etc/apt/sources.list"
for f in /etc/apt/apt.conf.d/*; do
  grep -q '^Acquire' "$f" 2>/dev/null && cp "$f" "$root/etc/apt/apt.conf.d/"
done
cp -L /etc/resolv.conf "$root/etc/resolv.conf"

mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"

# The working tree: tracked and untracked files that git does not ignore.
work=/work/tilescale
mkdir -p "$root$work"
(cd "$src" && git ls-files -z --cached --others --exclude-standard |
   while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
   tar --null -T - -cf -) | tar -xf - -C "$root$work"
mkdir -p "$root$work/data/npm"
cp "$src"/data/npm/*.tgz "$root$work/data/npm/"
cp -a "$src/scripts/ort/node_modules" "$root$work/scripts/ort/"
echo "fresh_check: copied $(cd "$root$work" && find . -type f | wc -l) files into $root$work"

in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash -c "cd $work && $1"
}
status=0
summary=()
for cmd in ./scripts/test.sh ./scripts/demo.sh; do
  log="$root.$(basename "$cmd" .sh).log"
  echo "fresh_check: running $cmd in the root (log: $log)"
  t0=$(date +%s)
  set +e
  in_root "$cmd" >"$log" 2>&1
  rc=$?
  set -e
  dt=$(( $(date +%s) - t0 ))
  summary+=("$(printf '%-20s exit %3d  wall %4d s (%d min %02d s)' "$cmd" "$rc" "$dt" $((dt / 60)) $((dt % 60)))")
  tail -n 25 "$log"
  if [ "$rc" -ne 0 ]; then status=1; break; fi
done
echo
echo "fresh_check: Debian 12 minbase root, $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ)"
printf 'fresh_check: %s\n' "${summary[@]}"
[ "$status" -eq 0 ] && echo "fresh_check: PASS" || echo "fresh_check: FAIL"
exit "$status"
