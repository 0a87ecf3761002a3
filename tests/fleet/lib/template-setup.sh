#!/bin/sh
# Turn a pristine mmdebstrap root into the fleet template.  Run by `fleet up` as
#   unshare -m --propagation private /bin/sh template-setup.sh ROOT POOLDIR REPO_URL CLIENT_PUB
# (private mount namespace: the proc/dev/run mounts below vanish with it).
# Needs the fleet HTTP repo to be reachable at REPO_URL from the machine (apt-get update).
set -eu
T=$1 POOL=$2 REPO_URL=$3 CLIENT_PUB=$4
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C DEBIAN_FRONTEND=noninteractive ACME_HEALTH_NOSTART=1
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY 2>/dev/null || true

# --- no services from maintainer scripts
printf '#!/bin/sh\nexit 101\n' >"$T/usr/sbin/policy-rc.d"
chmod 0755 "$T/usr/sbin/policy-rc.d"

# --- apt: only the test repository, no DNS
rm -f "$T/etc/apt/sources.list"
rm -f "$T"/etc/apt/sources.list.d/*
echo "deb [trusted=yes] $REPO_URL stable/" >"$T/etc/apt/sources.list.d/patchwave-fleet.list"
cat >"$T/etc/apt/apt.conf.d/90patchwave-fleet" <<'C'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Acquire::Retries "0";
Acquire::http::Timeout "10";
Acquire::http::Proxy "false";
C
: >"$T/etc/resolv.conf"
rm -rf "$T"/var/lib/apt/lists/*
mkdir -p "$T/var/lib/apt/lists/partial"

# --- sshd: ed25519 host key only (generated per host), key-only root login
rm -f "$T"/etc/ssh/ssh_host_*
mkdir -p "$T/etc/ssh/sshd_config.d"
cat >"$T/etc/ssh/sshd_config.d/patchwave-fleet.conf" <<'C'
HostKey /etc/ssh/ssh_host_ed25519_key
AddressFamily inet
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
PrintMotd no
X11Forwarding no
MaxStartups 100:30:200
MaxSessions 50
C
mkdir -p -m 0700 "$T/root/.ssh"
cp "$CLIENT_PUB" "$T/root/.ssh/authorized_keys"
chmod 0600 "$T/root/.ssh/authorized_keys"
echo fleet-template >"$T/etc/hostname"

# --- minimal pseudo file systems for the chroot work below
mount -t proc proc "$T/proc"
mount -t tmpfs -o mode=0755 tmpfs "$T/dev"
for d in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
  set -- $d; mknod -m 0666 "$T/dev/$1" c "$2" "$3"
done
ln -s /proc/self/fd "$T/dev/fd"
mount -t tmpfs -o mode=0755 tmpfs "$T/run"   # no /run/fleet-host: acme-health won't start

# --- initial package set, straight from the repo's .debs
mkdir -p "$T/tmp/fleet-debs"
for p in acme-lib_2.0-1 acme-web_1.0-1 acme-health_1.0-1 acme-slow_1.0-1 acme-api_1.0-1; do
  cp "$POOL/${p}_all.deb" "$T/tmp/fleet-debs/"
done
chroot "$T" sh -c 'dpkg -i /tmp/fleet-debs/*.deb'
rm -rf "$T/tmp/fleet-debs"

# --- apt lists already fetched from the repo (same URL on every host)
chroot "$T" apt-get -q -o Acquire::http::Timeout=5 update
chroot "$T" apt-get clean
rm -f "$T"/var/log/apt/* "$T"/var/log/dpkg.log 2>/dev/null || true
: >"$T/var/log/dpkg.log"
