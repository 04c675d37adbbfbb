#!/usr/bin/env bash
# Sets up everything procsight needs on a Debian 12 host: system packages for eBPF (bcc and kernel
# headers) and for the page's browser tests (chromium, chromedriver), a virtualenv in .venv with procsight
# installed (editable), and the npm clients the tests use.
# Idempotent: a second run only checks, in one line. Installer output goes to .venv/setup.log, shown
# only when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }

# gcc, libc6-dev and python3-dev: procsight's C extensions (setup.py);
# clickhouse-server: Debian's (18.16), for the native-protocol tests of the clickhouse exporter;
# chromium and chromium-driver: the page's browser tests
apt_packages=(gcc libc6-dev python3-dev bpfcc-tools python3-bpfcc linux-headers-amd64 iproute2 nodejs npm
  clickhouse-server chromium chromium-driver)
install_system_packages() {
  local missing=()
  for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  # node/npm may come from elsewhere (nodesource, nvm): only ask apt when the command is absent.
  command -v node >/dev/null 2>&1 && missing=("${missing[@]/nodejs}")
  command -v npm >/dev/null 2>&1 && missing=("${missing[@]/npm}")
  read -r -a missing <<<"${missing[*]:-}"
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "not root: skipping apt-get install of ${missing[*]} (eBPF capture will fall back)"
    return 0
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# bcc compiles its BPF C against /lib/modules/$(uname -r)/build. Debian ships headers for its own
# kernel; procsight's BPF program reads only tracepoint arguments, so any recent headers compile it.
link_kernel_headers() {
  local modules="/lib/modules/$(uname -r)"
  [ -e "$modules/source/include/linux/kconfig.h" ] && return 0
  [ "$(id -u)" -eq 0 ] || return 0
  local headers common
  headers=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$headers" ] || { log "no kernel headers under /usr/src: eBPF capture will fall back"; return 0; }
  # Debian splits headers: generated ones in -amd64 (build), the rest in -common (source).
  common="${headers%-amd64}-common"
  [ -d "$common" ] || common="$headers"
  mkdir -p "$modules"
  ln -sfn "$headers" "$modules/build"
  ln -sfn "$common" "$modules/source"
  log "linked $headers as $modules/build and $common as $modules/source"
}

mount_tracefs() {
  [ -d /sys/kernel/tracing/events ] && return 0
  [ "$(id -u)" -eq 0 ] || return 0
  mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || log "could not mount tracefs"
}

# pip runs only when what it builds from changed since the last install (a hash of pyproject.toml, setup.py,
# the C sources and headers is kept in .venv), so a second run neither reinstalls nor prints screens of build
# warnings.
create_virtualenv() {
  local python="${PYTHON:-python3}" stamp=.venv/.procsight-installed wanted
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv with $($python --version)"
    "$python" -m venv .venv
  fi
  wanted=$(cat pyproject.toml setup.py $(git ls-files '*.[ch]' 2>/dev/null || find . -name '*.[ch]' -not -path './.venv/*') |
    sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    check_compiler
    log "installing procsight and its dependencies into .venv (log: .venv/setup.log)"
    quietly .venv/bin/pip install --disable-pip-version-check --upgrade pip
    quietly .venv/bin/pip install --disable-pip-version-check -e '.[dev]'
    echo "$wanted" >"$stamp"
  fi
  # bcc's Python bindings come from Debian (the PyPI package named bcc is unrelated): expose that one
  # package to the virtualenv without pulling in the rest of the system site-packages.
  local site bcc_dir=/usr/lib/python3/dist-packages/bcc
  site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  if [ -d "$bcc_dir" ] && [ ! -e "$site/bcc" ]; then
    ln -s "$bcc_dir" "$site/bcc"
  fi
}

# The C extensions need a compiler and the headers of the Python in .venv: say so before pip fails on them.
check_compiler() {
  local include
  include=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  if ! command -v gcc >/dev/null 2>&1 || [ ! -f "$include/Python.h" ]; then
    log "procsight builds C extensions: it needs gcc and $include/Python.h (as root: apt-get install gcc libc6-dev python3-dev)"
    return 1
  fi
}

# Runs a command with its output in .venv/setup.log; on failure, shows the end of that log.
quietly() {
  if ! "$@" >>.venv/setup.log 2>&1; then
    log "failed: $* (last lines of .venv/setup.log below)"
    tail -n 30 .venv/setup.log >&2
    return 1
  fi
}

install_npm_clients() {
  [ -f tests/js/package.json ] || return 0
  command -v npm >/dev/null 2>&1 || { log "npm not found: JS SDK tests will be skipped"; return 0; }
  if [ ! -d tests/js/node_modules ]; then
    log "npm install (OpenTelemetry JS SDK, for interoperability tests)"
    (cd tests/js && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}

install_system_packages
link_kernel_headers
mount_tracefs
create_virtualenv
install_npm_clients
log "ready: .venv/bin/procsight ($(.venv/bin/procsight --version))"
