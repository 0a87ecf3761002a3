#!/usr/bin/python3
"""Write DIR/fleet.json, DIR/known_hosts and DIR/fleet.toml from the per-host state in
DIR/hosts/<id>/{addr,pid,host_key.pub}.  host_key.pub is the *published* (trusted) key:
`fleet rekey` changes the key inside the host without touching it (unless asked to)."""
import json, os, sys

d, bridge_addr, repo_url, http_pid = sys.argv[1:5]
hosts_dir = os.path.join(d, "hosts")

def read(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default

hosts = []
ids = sorted(x for x in os.listdir(hosts_dir) if os.path.isdir(os.path.join(hosts_dir, x))) \
    if os.path.isdir(hosts_dir) else []
for i, hid in enumerate(ids):
    h = os.path.join(hosts_dir, hid)
    addr = read(os.path.join(h, "addr"))
    key = read(os.path.join(h, "host_key.pub"))
    if not addr or not key:
        continue
    pid = read(os.path.join(h, "pid"))
    key = " ".join(key.split()[:2])          # "ssh-ed25519 AAAA..." without comment
    hosts.append({
        "id": hid, "ns": "pw-" + hid, "addr": addr, "port": 22,
        "root": os.path.join(h, "root"),
        "pid": int(pid) if pid and pid.isdigit() else None,
        "host_key_pub": key,
    })

def atomic_write(name, text, mode=0o644):
    p = os.path.join(d, name)
    tmp = p + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, p)

doc = {
    "dir": d,
    "bridge_addr": bridge_addr,
    "repo_url": repo_url,
    "client_key": os.path.join(d, "client_key"),
    "known_hosts": os.path.join(d, "known_hosts"),
    "fleet_toml": os.path.join(d, "fleet.toml"),
    "http_pid": int(http_pid) if http_pid.isdigit() else None,
    "hosts": hosts,
}
atomic_write("fleet.json", json.dumps(doc, indent=2) + "\n")
atomic_write("known_hosts", "".join("%s %s\n" % (h["addr"], h["host_key_pub"]) for h in hosts))

out = ['[defaults]', 'user = "root"',
       'key = "file:%s"' % doc["client_key"],
       'known_hosts = "%s"' % doc["known_hosts"], '']
for i, h in enumerate(hosts):
    out += ['[[hosts]]',
            'id = "%s"' % h["id"],
            'address = "%s"' % h["addr"],
            'port = %d' % h["port"],
            'env = "%s"' % ("non-prod" if i < 2 else "prod"),
            'scope = "%s"' % ("web" if i % 2 == 0 else "db"),
            'tags = ["fleet-test"]', '']
atomic_write("fleet.toml", "\n".join(out))
