#!/bin/sh
# Makes a small busybox root filesystem tarball to import as an image:
#   hutch import "$(scripts/make-busybox-rootfs.sh /tmp/busybox.tar)" busybox
# Usage: scripts/make-busybox-rootfs.sh OUT.tar
# Needs a static busybox (Debian: busybox-static) at /bin/busybox, or set BUSYBOX=PATH.
# Contents: /bin/busybox and one symlink per applet in /bin, /etc/passwd (root 0,
# app 1000:1000 with home /home/app, nobody 65534), /etc/group, a file /bin/notexec
# without the executable bit, and empty /proc /sys /dev /tmp /root /home/app.
# Every entry is owned by 0:0 in the tarball. Prints the tarball's path.
# The integration tests embed this very script (tests/integration/CMakeLists.txt):
# keep it POSIX sh.
set -eu
if [ "$#" -ne 1 ]; then
  echo "usage: $0 OUT.tar" >&2
  exit 2
fi
out=$1
case $out in
  /*) ;;
  *) out=$(pwd)/$out ;;
esac
busybox=${BUSYBOX:-/bin/busybox}
if [ ! -x "$busybox" ]; then
  echo "$0: $busybox not found (apt-get install busybox-static)" >&2
  exit 1
fi
umask 022
work=$(mktemp -d "${TMPDIR:-/tmp}/hutch-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
r=$work/rootfs
mkdir -p "$r/bin" "$r/etc" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/root" "$r/home/app"
chmod 1777 "$r/tmp"
chmod 0700 "$r/root"
cp "$busybox" "$r/bin/busybox"
chmod 0755 "$r/bin/busybox"
"$busybox" --list | while IFS= read -r applet; do
  case $applet in
    ''|busybox|*/*) ;;
    *) ln -s busybox "$r/bin/$applet" ;;
  esac
done
cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$r/etc/group" <<'EOF'
root:x:0:
app:x:1000:
nogroup:x:65534:
EOF
printf '#!/bin/sh\necho this must not run\n' >"$r/bin/notexec"
chmod 0644 "$r/bin/notexec" "$r/etc/passwd" "$r/etc/group"
tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@1700000000 \
  -C "$r" -cf "$work/out.tar" .
mv -f "$work/out.tar" "$out"
echo "$out"
