#!/bin/sh
# PID 1 of one fleet host.  Started by `fleet` as
#   nsenter --net=/run/netns/pw-ID unshare -m -u -p -f --kill-child --propagation private \
#       /bin/sh hostinit.sh ID ROOT FLEETDIR
# i.e. inside the host's own network namespace, in fresh mount/UTS/PID namespaces.
# It mounts the pseudo file systems inside ROOT, runs the boot hooks of the root
# (/usr/lib/fleet-boot.d/*) and finally becomes `sshd -D -e` chrooted into ROOT.
set -eu
ID=$1
R=$2
# $3 (FLEETDIR) is only there so that `fleet down` can find stray hosts by command line.

hostname "$ID"
# Do not pin other hosts' network namespaces (ip netns del would not free them).
umount -l /run/netns 2>/dev/null || true
# No IPv6 chatter on the test link; /proc/sys/net is per network namespace of the writer.
echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null || true
echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null || true

mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -t tmpfs -o mode=0755,size=8m,nosuid tmpfs "$R/dev"
mknod -m 0666 "$R/dev/null" c 1 3
mknod -m 0666 "$R/dev/zero" c 1 5
mknod -m 0666 "$R/dev/full" c 1 7
mknod -m 0666 "$R/dev/random" c 1 8
mknod -m 0666 "$R/dev/urandom" c 1 9
mknod -m 0666 "$R/dev/tty" c 5 0
mkdir -m 0755 "$R/dev/pts"
mkdir -m 1777 "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
mount -t tmpfs -o mode=0755,size=64m,nosuid,nodev tmpfs "$R/run"
mkdir -p "$R/run/sshd" "$R/run/lock"
chmod 1777 "$R/run/lock"
: >"$R/run/fleet-host"   # marker: "this root is a running fleet host" (acme-health checks it)

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
chroot "$R" /bin/sh -c '
  for f in /usr/lib/fleet-boot.d/*; do
    [ -x "$f" ] || continue
    "$f" </dev/null || echo "fleet-boot: $f failed ($?)" >&2
  done' || true

echo "hostinit: $ID up, exec sshd"
exec chroot "$R" /usr/sbin/sshd -D -e
