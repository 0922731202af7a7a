#!/usr/bin/env bash
# One-shot, idempotent set-up of nnit on Debian 12 (bookworm) with Python 3.11.
#
#   bash scripts/setup.sh            # system packages + .venv + nnit (editable) + dev tools
#
# What it does, each step skipped when already done:
#   1. Debian packages: the Fashion-MNIST data set (dataset-fashion-mnist) and Vulkan tools.
#   2. A virtual environment in .venv with torch==2.13.0 (the CPU wheel when there is no CUDA
#      GPU), mani-skill==3.0.1 / sapien==3.0.3 and nnit itself with its test extras.
#   3. If SAPIEN finds no usable Vulkan device, Mesa >= 24.3 (lavapipe) from bookworm-backports:
#      Debian 12's own Mesa 22.3 is refused by SAPIEN 3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

# ---------------------------------------------------------------- 1. Debian packages
need_pkgs=()
for p in dataset-fashion-mnist vulkan-tools ffmpeg; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "apt-get install ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# ---------------------------------------------------------------- 2. Python environment
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $PY"
  "$PY" -m venv .venv
fi
VPY="$ROOT/.venv/bin/python"
"$VPY" -m pip install -q --upgrade pip >/dev/null
if ! "$VPY" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  # torch==2.13.0 resolves to the local CPU wheel on machines without CUDA; on a CUDA machine
  # the same pin pulls the CUDA build from PyPI.
  log "installing torch==2.13.0"
  "$VPY" -m pip install -q "torch==2.13.0"
fi
log "installing nnit (editable) with mani-skill, sapien and test tools"
"$VPY" -m pip install -q -e ".[dev]"

# ---------------------------------------------------------------- 3. Vulkan for SAPIEN
vulkan_ok() { "$VPY" -m nnit.tasks.vulkan_check >/dev/null 2>&1; }
if ! vulkan_ok; then
  log "SAPIEN finds no usable Vulkan device: installing Mesa lavapipe from bookworm-backports"
  srcs=$(ls /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if ! cat $srcs 2>/dev/null | grep -q "bookworm-backports"; then
    # the same Debian mirror as the base system
    mirror=$(cat $srcs 2>/dev/null | grep -v '^ *#' | grep -oE "https?://[^ ]+/debian/?( |$)" \
             | grep -v security | head -n1 | tr -d ' ' || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    echo "deb ${mirror%/} bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
  if vulkan_ok; then log "SAPIEN now sees a Vulkan device"; else
    log "WARNING: SAPIEN still finds no Vulkan device; robot tasks will not run"; "$VPY" -m nnit.tasks.vulkan_check || true; fi
fi
log "done: activate with 'source .venv/bin/activate' or call .venv/bin/nnit"
