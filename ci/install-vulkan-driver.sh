#!/usr/bin/env bash
# Makes sure Dawn (the `webgpu` npm package) finds a WebGPU adapter, for the webgpu backend's
# tests. With none, installs Mesa's Vulkan drivers, which include lavapipe: a software Vulkan
# device (a CPU posing as a GPU), enough to run every GPU code path in CI. Debian 12's own Mesa
# (22.3) is too old for Dawn, so there the package comes from bookworm-backports (Mesa 25).
# Run after `npm ci` (the probe uses the installed `webgpu` package). Exit 0 when an adapter is
# found at the end, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

probe() {
  # shellcheck disable=SC2016 # the ${...} below are JavaScript template literals
  node --input-type=module -e '
    const { create, globals } = await import("webgpu");
    Object.assign(globalThis, globals);
    const adapter = await create([]).requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) process.exit(1);
    const i = adapter.info;
    console.log(`WebGPU adapter: ${i.vendor} ${i.architecture} ${i.device} (${i.description})`);
  ' 2>/dev/null
}

if probe; then exit 0; fi

SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "no WebGPU adapter and no apt-get: install a Vulkan driver (Mesa's mesa-vulkan-drivers, 23 or newer)" >&2
  exit 1
fi

codename=""
# shellcheck source=/dev/null # the system's file, read for VERSION_CODENAME only
[ -r /etc/os-release ] && codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ "$codename" = "bookworm" ]; then
  list=/etc/apt/sources.list.d/parity-bookworm-backports.list
  [ -e "$list" ] || echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee "$list" >/dev/null
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
else
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers >/dev/null
fi

if probe; then exit 0; fi
echo "mesa-vulkan-drivers installed, but Dawn still finds no adapter (Mesa older than 23?)" >&2
exit 1
