#!/usr/bin/env bash
# Installs what vslab needs on a Debian 12 machine, idempotently: Debian packages, npm
# dependencies, the native helper and the TypeScript build. Quiet when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then echo "vslab setup: run as root (labs create namespaces and links)" >&2; exit 3; fi

# Debian packages: every tool and file of the host requirements list (src/host/requirements.json, the list
# `vslab doctor` reports and the VM image builder copies from) whose program or file is not there.
mapfile -t missing < <(node -e '
  const fs = require("fs"), path = require("path");
  const list = JSON.parse(fs.readFileSync("src/host/requirements.json", "utf8"));
  const dirs = [...(process.env.PATH || "").split(":"), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"].filter(Boolean);
  const onPath = (t) => dirs.some((d) => { try { fs.accessSync(path.join(d, t), fs.constants.X_OK); return true; } catch { return false; } });
  for (const t of list.tools) if (!onPath(t.tool)) console.log(t.package);
  for (const f of list.files) if (!fs.existsSync(f.path)) console.log(f.package);
')
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "vslab setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # tshark asks whether non-root users may capture; answer no.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm dependencies (exact, from the lock file) when missing or stale.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "vslab setup: installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi
node scripts/build.js
