#!/bin/bash
# Build the fleet's test apt repository (flat repo) into OUT:
#   OUT/deb/pool/*.deb
#   OUT/deb/stable/{Packages,Packages.gz,Release}
# Hosts use:  deb [trusted=yes] http://ADDR:PORT/deb stable/
# Rebuilds are byte-identical (fixed SOURCE_DATE_EPOCH, normalised modes/mtimes).
set -euo pipefail
umask 022
export LC_ALL=C
OUT=${1:?usage: build-repo.sh OUTDIR}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
MAINT="patchwave fleet harness <fleet@patchwave.invalid>"

WORK=$(mktemp -d "${OUT%/}.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT/deb/pool" "$OUT/deb/stable"

# pkg NAME VERSION DESCRIPTION [DEPENDS] -- sets $P to the staging root
new_pkg() {
  P=$WORK/$1_$2
  mkdir -p "$P/DEBIAN"
  {
    echo "Package: $1"
    echo "Version: $2"
    echo "Architecture: all"
    echo "Maintainer: $MAINT"
    echo "Section: misc"
    echo "Priority: optional"
    [ -n "${4:-}" ] && echo "Depends: $4"
    echo "Description: $3"
    echo " Test package of the patchwave fleet harness (tests/fleet). Not for real use."
  } >"$P/DEBIAN/control"
}
script() { # script NAME  (body on stdin)
  cat >"$P/DEBIAN/$1"
  chmod 0755 "$P/DEBIAN/$1"
}
file() { # file PATH MODE (content on stdin)
  mkdir -p "$P$(dirname "$1")"
  cat >"$P$1"
  chmod "$2" "$P$1"
}
finish_pkg() {
  local name=$1 ver=$2
  find "$P" -type d -exec chmod 0755 {} +
  find "$P" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  dpkg-deb --root-owner-group -Zgzip --build "$P" "$OUT/deb/pool/${name}_${ver}_all.deb" >/dev/null
}

# ---------------------------------------------------------------- acme-lib
for v in 2.0-1 2.1-1; do
  new_pkg acme-lib "$v" "ACME shared library (fleet test package)"
  echo "$v" | file /usr/lib/acme-lib/VERSION 0644
  finish_pkg acme-lib "$v"
done

# ---------------------------------------------------------------- acme-web
for v in 1.0-1 1.0-2 1.0-3; do
  new_pkg acme-web "$v" "ACME web frontend (fleet test package)"
  echo "$v" | file /usr/share/acme-web/VERSION 0644
  printf '#!/bin/sh\necho "acme-web %s"\n' "$v" | file /usr/bin/acme-web 0755
  if [ "$v" = 1.0-3 ]; then
    script postinst <<'S'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  echo "acme-web 1.0-3: simulated postinst failure" >&2
  exit 1
fi
exit 0
S
  fi
  finish_pkg acme-web "$v"
done

# ---------------------------------------------------------------- acme-slow
for v in 1.0-1 1.0-2; do
  new_pkg acme-slow "$v" "ACME slow-to-configure package (fleet test package)"
  echo "$v" | file /usr/share/acme-slow/VERSION 0644
  if [ "$v" = 1.0-2 ]; then
    # Delay in seconds: /etc/acme-slow.delay on the host if present, else 20.
    script postinst <<'S'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  d=$(cat /etc/acme-slow.delay 2>/dev/null || echo 20)
  echo "acme-slow 1.0-2: configuring, sleeping ${d}s"
  sleep "$d"
  echo "acme-slow 1.0-2: configured"
fi
exit 0
S
  fi
  finish_pkg acme-slow "$v"
done

# ---------------------------------------------------------------- acme-health
for v in 1.0-1 1.0-2; do
  new_pkg acme-health "$v" "ACME per-host health endpoint on :8080 (fleet test package)" "python3"
  echo "$v" | file /usr/share/acme-health/version 0644
  if [ "$v" = 1.0-1 ]; then echo good; else echo bad; fi | file /usr/share/acme-health/mode 0644
  file /usr/lib/acme-health/server.py 0755 <<'PY'
#!/usr/bin/python3
"""acme-health: GET /health -> 200 "ok" (mode good) or 500 "bad" (mode bad).

The answer is decided per request from /usr/share/acme-health/{version,mode}, the files the
installed package version ships, so an upgrade/downgrade changes it immediately.
--daemon: detach (double fork, setsid, close every inherited fd so apt/dpkg/sshd are never
held open), write the pid file, and let the parent exit only once the port is bound."""
import os, sys, argparse
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

SHARE = "/usr/share/acme-health"

def read(name, default=""):
    try:
        with open(os.path.join(SHARE, name)) as f:
            return f.read().strip()
    except OSError:
        return default

class Handler(BaseHTTPRequestHandler):
    server_version = "acme-health"
    def _send(self, code, body):
        data = (body + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Acme-Health-Version", read("version", "none"))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
    def do_GET(self):
        if self.path == "/health":
            mode = read("mode", "missing")
            if mode == "good":
                self._send(200, "ok")
            else:
                self._send(500, "bad" if mode == "bad" else "unavailable")
        elif self.path == "/version":
            self._send(200, read("version", "none"))
        else:
            self._send(404, "not found")
    do_HEAD = do_GET
    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))
        sys.stderr.flush()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--daemon", action="store_true")
    ap.add_argument("--pidfile", default="/run/acme-health.pid")
    ap.add_argument("--log", default="/var/log/acme-health.log")
    a = ap.parse_args()
    if not a.daemon:
        ThreadingHTTPServer(("0.0.0.0", a.port), Handler).serve_forever()
        return
    r, w = os.pipe()
    if os.fork():                      # parent: wait for "ok" from the daemon
        os.close(w)
        msg = b""
        while True:
            chunk = os.read(r, 256)
            if not chunk:
                break
            msg += chunk
        if msg.startswith(b"ok"):
            sys.exit(0)
        sys.stderr.write("acme-health: failed to start: %s\n" % msg.decode(errors="replace"))
        sys.exit(1)
    os.close(r)
    os.setsid()
    if os.fork():
        os._exit(0)
    # the daemon: drop every inherited descriptor (dpkg status fd, sshd session pipes, ...)
    os.closerange(3, w)
    os.closerange(w + 1, 65536)
    null = os.open("/dev/null", os.O_RDWR)
    logfd = os.open(a.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0); os.dup2(logfd, 1); os.dup2(logfd, 2)
    os.close(null); os.close(logfd)
    os.chdir("/")
    try:
        srv = ThreadingHTTPServer(("0.0.0.0", a.port), Handler)
        with open(a.pidfile, "w") as f:
            f.write("%d\n" % os.getpid())
    except Exception as e:
        os.write(w, ("error: %s" % e).encode())
        os._exit(1)
    os.write(w, b"ok")
    os.close(w)
    srv.serve_forever()

if __name__ == "__main__":
    main()
PY
  file /usr/lib/acme-health/ctl 0755 <<'SH'
#!/bin/sh
# acme-health control: start | stop | restart | status
# No systemd/init.d/invoke-rc.d involved, so policy-rc.d does not matter.
# `start` only runs on a live fleet host (/run/fleet-host exists), never in the template chroot.
PIDFILE=/run/acme-health.pid
running_pid() {
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q acme-health "/proc/$pid/cmdline" 2>/dev/null
}
do_stop() {
  if running_pid; then
    kill "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
}
do_start() {
  if [ ! -e /run/fleet-host ] || [ -n "${ACME_HEALTH_NOSTART:-}" ]; then
    echo "acme-health: not on a running fleet host, not starting"
    return 0
  fi
  running_pid && do_stop
  /usr/bin/python3 /usr/lib/acme-health/server.py --daemon </dev/null
}
case "${1:-}" in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop; do_start ;;
  status) if running_pid; then echo "running $pid"; else echo stopped; exit 3; fi ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
SH
  printf '#!/bin/sh\nexec /usr/lib/acme-health/ctl start\n' | file /usr/lib/fleet-boot.d/acme-health 0755
  script postinst <<'S'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  /usr/lib/acme-health/ctl restart
fi
exit 0
S
  script prerm <<'S'
#!/bin/sh
/usr/lib/acme-health/ctl stop || true
exit 0
S
  script postrm <<'S'
#!/bin/sh
if [ "$1" = purge ]; then rm -f /var/log/acme-health.log; fi
exit 0
S
  finish_pkg acme-health "$v"
done

# ---------------------------------------------------------------- acme-api, acme-extra
# A dependency chain for whole-transaction rollouts: acme-api 1.0-1 needs acme-lib >= 2.0;
# 1.0-2 needs acme-lib >= 2.1 (an upgrade of the library) and acme-extra (a package the host
# does not have). 1.0-2's postinst fails on a host that has /etc/acme-api.fail, so a test can
# make one host of a wave fail and watch the whole transaction come back off.
new_pkg acme-extra 1.0-1 "ACME extra components (fleet test package)"
echo 1.0-1 | file /usr/share/acme-extra/VERSION 0644
finish_pkg acme-extra 1.0-1
for v in 1.0-1 1.0-2; do
  if [ "$v" = 1.0-1 ]; then
    new_pkg acme-api "$v" "ACME API server (fleet test package)" "acme-lib (>= 2.0)"
  else
    new_pkg acme-api "$v" "ACME API server (fleet test package)" "acme-lib (>= 2.1), acme-extra"
    script postinst <<'S'
#!/bin/sh
set -e
if [ "$1" = configure ] && [ -e /etc/acme-api.fail ]; then
  echo "acme-api 1.0-2: simulated postinst failure (/etc/acme-api.fail)" >&2
  exit 1
fi
exit 0
S
  fi
  echo "$v" | file /usr/share/acme-api/VERSION 0644
  finish_pkg acme-api "$v"
done

# ---------------------------------------------------------------- index
cd "$OUT/deb"
apt-ftparchive packages pool >"$WORK/Packages"
mv "$WORK/Packages" stable/Packages
gzip -9n <stable/Packages >stable/Packages.gz
touch -d "@$SOURCE_DATE_EPOCH" stable/Packages stable/Packages.gz
apt-ftparchive \
  -o APT::FTPArchive::Release::Origin=patchwave-fleet \
  -o APT::FTPArchive::Release::Label=patchwave-fleet \
  -o APT::FTPArchive::Release::Suite=stable \
  -o APT::FTPArchive::Release::Codename=stable \
  release stable >"$WORK/Release"
# Fixed Date so that rebuilds are byte-identical.
sed -i "s/^Date: .*/Date: $(date -u -R -d "@$SOURCE_DATE_EPOCH")/" "$WORK/Release"
touch -d "@$SOURCE_DATE_EPOCH" "$WORK/Release"
mv "$WORK/Release" stable/Release
