#!/usr/bin/env bash
# Starts Docker's daemon for the docker backend when none answers, with flags that leave the host's
# firewall, routes and sysctls as they were: no docker0 bridge, no iptables/ip6tables rules, and
# net.ipv4.ip_forward untouched (plain dockerd turns it on). A daemon someone else started is used
# as it is, never restarted. Idempotent; quiet when the daemon is already up.
set -euo pipefail
SOCK=/var/run/docker.sock
ping_daemon() {
  node -e '
    const req = require("http").get({ socketPath: process.argv[1], path: "/_ping", timeout: 2000 }, (r) => process.exit(r.statusCode === 200 ? 0 : 1));
    req.on("error", () => process.exit(1)); req.on("timeout", () => process.exit(1));' "$SOCK" 2>/dev/null
}
if ping_daemon; then exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then echo "vslab dockerd: dockerd is not installed (apt-get install docker.io)" >&2; exit 1; fi
if pgrep -x dockerd >/dev/null; then
  echo "vslab dockerd: a dockerd is running but does not answer on $SOCK yet; waiting" >&2
else
  echo "vslab setup: starting dockerd (--bridge=none --iptables=false --ip6tables=false --ip-forward=false)"
  setsid nohup dockerd --bridge=none --iptables=false --ip6tables=false --ip-forward=false \
    >>/var/log/vslab-dockerd.log 2>&1 </dev/null &
fi
for _ in $(seq 1 150); do ping_daemon && exit 0; sleep 0.2; done
echo "vslab dockerd: the daemon did not answer on $SOCK within 30 s (see /var/log/vslab-dockerd.log)" >&2
exit 1
