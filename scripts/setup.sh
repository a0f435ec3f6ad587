#!/usr/bin/env bash
# Install everything, build and install vsag, start a local demo cluster and run the demo.
source "$(dirname "$0")/lib.sh"
ensure_toolchain
install_extension
bash "$REPO/scripts/demo.sh"
