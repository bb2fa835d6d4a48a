#!/usr/bin/env bash
# Installs Mesa's lavapipe (a software Vulkan driver) so that Dawn, and so fusegrad,
# gets a WebGPU adapter on a machine without a GPU.
#
# Debian 12 ships mesa 22.3, whose lavapipe Dawn rejects ("shaderUniform*ArrayDynamicIndexing
# required"). mesa-vulkan-drivers 25.0 from bookworm-backports works. The script is idempotent:
# it does nothing where a WebGPU adapter already exists or the right driver is installed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
probe="$here/probe-adapter.mjs"

has_adapter() {
  [[ -d "$here/../node_modules/webgpu" ]] && node "$probe" >/dev/null 2>&1
}

if has_adapter; then
  echo "install-lavapipe: a WebGPU adapter is already available; nothing to do."
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1 || [[ ! -r /etc/os-release ]]; then
  echo "install-lavapipe: this script needs a Debian-family system with apt-get." >&2
  echo "Install a Vulkan driver by other means (a GPU driver, or Mesa's lavapipe >= 23) and retry." >&2
  exit 1
fi

# shellcheck disable=SC1091
. /etc/os-release
codename=${VERSION_CODENAME:-}

installed=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
if [[ -n "$installed" ]] && dpkg --compare-versions "$installed" ge 23; then
  echo "install-lavapipe: mesa-vulkan-drivers $installed is already installed."
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "install-lavapipe: root is needed to install packages, and sudo is missing." >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
if [[ "$ID" == "debian" && "$codename" == "bookworm" ]]; then
  list=/etc/apt/sources.list.d/fusegrad-bookworm-backports.list
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" | $sudo tee "$list" >/dev/null
  fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
else
  # Newer Debian and Ubuntu releases ship a Mesa that Dawn accepts.
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

version=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)
echo "install-lavapipe: installed mesa-vulkan-drivers $version."
