#!/usr/bin/env bash
# Installs the real NTP peers and tools that the interop tests run against (Debian 12, as root):
#   - chrony (chronyd, chronyc), tshark, iproute2, ethtool, procps, python3 from Debian packages;
#   - NTPsec (ntpd, ntpdig, ntpq + its python3-ntp module) unpacked with `dpkg -x` into
#     $RUBIDIUM_PEERS_DIR/ntpsec (default /opt/rubidium-peers/ntpsec), because the chrony and
#     ntpsec packages conflict and cannot both be installed.
# Idempotent: when everything is already there it prints so and exits without touching apt.
# It never leaves a system chronyd running (the tests run their own chronyd -x instances).
set -euo pipefail

PEERS_DIR="${RUBIDIUM_PEERS_DIR:-/opt/rubidium-peers}"
NTPSEC_DIR="$PEERS_DIR/ntpsec"
STAMP="$NTPSEC_DIR/.rubidium-installed"
APT_PKGS=(chrony tshark iproute2 ethtool procps psmisc python3 libbsd0 libcap2 libssl3 ca-certificates clang)
NTPSEC_DEBS=(ntpsec python3-ntp ntpsec-ntpdig)
export DEBIAN_FRONTEND=noninteractive

log() { echo "install-peers: $*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "install-peers: must run as root" >&2
  exit 1
fi

# A chronyd started by the package (not one of the tests' -x instances, which use their own
# pidfiles) would discipline the host clock: stop it through its pidfile only.
stop_system_chronyd() {
  local pidfile pid
  for pidfile in /run/chrony/chronyd.pid /var/run/chrony/chronyd.pid /run/chronyd.pid; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    if [ -n "$pid" ] && [ -d "/proc/$pid" ] && grep -q chronyd "/proc/$pid/comm" 2>/dev/null; then
      log "stopping system chronyd (pid $pid) started by the package"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
      [ -d "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null || true
    fi
  done
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now chrony.service >/dev/null 2>&1 || true
  fi
}

missing_pkgs=()
for p in "${APT_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing_pkgs+=("$p")
  fi
done

ntpsec_ok=1
for f in usr/sbin/ntpd usr/bin/ntpdig usr/bin/ntpq usr/lib/python3/dist-packages/ntp/packet.py \
         usr/lib/python3/dist-packages/ntp/libntpc.so; do
  [ -e "$NTPSEC_DIR/$f" ] || ntpsec_ok=0
done
[ -f "$STAMP" ] || ntpsec_ok=0

if [ "${#missing_pkgs[@]}" -eq 0 ] && [ "$ntpsec_ok" -eq 1 ]; then
  stop_system_chronyd
  log "everything already installed: $(chronyd -v 2>/dev/null | head -1); tshark $(dpkg-query -W -f='${Version}' tshark); NTPsec $(cat "$STAMP") in $NTPSEC_DIR"
  exit 0
fi

log "apt-get update"
apt-get update -qq

if [ "${#missing_pkgs[@]}" -gt 0 ]; then
  log "installing: ${missing_pkgs[*]}"
  # Keep package scripts from starting services (chronyd would discipline the host clock).
  added_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  set +e
  apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}"
  rc=$?
  set -e
  [ "$added_policy" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
  if [ "$rc" -ne 0 ]; then
    echo "install-peers: apt-get install failed ($rc)" >&2
    exit "$rc"
  fi
fi
stop_system_chronyd

if [ "$ntpsec_ok" -ne 1 ]; then
  tmp="$(mktemp -d /tmp/rbt-peers-debs.XXXXXX)"
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp"
  id _apt >/dev/null 2>&1 && chown _apt "$tmp"
  log "downloading ${NTPSEC_DEBS[*]}"
  (cd "$tmp" && apt-get download -qq "${NTPSEC_DEBS[@]}")
  rm -rf "$NTPSEC_DIR.new"
  mkdir -p "$NTPSEC_DIR.new"
  for deb in "$tmp"/*.deb; do
    dpkg -x "$deb" "$NTPSEC_DIR.new"
  done
  # ntp/ntpc.py looks for libntpc.so beside itself first: link it there so the Python tools
  # (ntpdig, ntpq) find the library of the same tree instead of a system one.
  ln -sf ../../../x86_64-linux-gnu/ntp/libntpc.so.1.1.0 \
    "$NTPSEC_DIR.new/usr/lib/python3/dist-packages/ntp/libntpc.so"
  dpkg-deb -f "$(ls "$tmp"/ntpsec_*.deb)" Version >"$NTPSEC_DIR.new/.rubidium-installed"
  rm -rf "$NTPSEC_DIR"
  mv "$NTPSEC_DIR.new" "$NTPSEC_DIR"
fi

# Smoke-check what the tests will run.
chronyd -v | head -1
tshark -v 2>/dev/null | head -1
"$NTPSEC_DIR/usr/sbin/ntpd" --version 2>&1 | head -1
PYTHONPATH="$NTPSEC_DIR/usr/lib/python3/dist-packages" /usr/bin/python3 "$NTPSEC_DIR/usr/bin/ntpdig" --version 2>&1 | head -1
log "installed: apt [${missing_pkgs[*]:-none}], NTPsec $(cat "$STAMP") in $NTPSEC_DIR"
