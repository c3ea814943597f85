#!/usr/bin/env bash
# Installs what vslab needs on a Debian 12 machine, idempotently: Debian packages, npm
# dependencies, the native helper and the TypeScript build. Quiet when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then echo "vslab setup: run as root (labs create namespaces and links)" >&2; exit 3; fi

# Debian packages: tool -> package.
declare -A PKG=(
  [ip]=iproute2 [nsenter]=util-linux [tcpdump]=tcpdump [nft]=nftables [socat]=socat [ping]=iputils-ping
  [ss]=iproute2 [ipvsadm]=ipvsadm [qemu-system-x86_64]=qemu-system-x86 [busybox]=busybox-static
  [tshark]=tshark [cc]=gcc [cpio]=cpio [kmod]=kmod [dash]=dash [zstd]=zstd [xz]=xz-utils
  [setpriv]=util-linux
)
missing=()
for tool in "${!PKG[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${PKG[$tool]}")
done
# Not tools but files: the static guest agent needs libc's static archive; apt-get download needs Debian's keys.
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || missing+=(libc6-dev)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
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
