#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh Debian machine, then runs
# every test of the workspace. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d ../shared/golden ]; then
  echo "error: ../shared/golden is missing (the golden tests read it; the shared/ folder must sit beside the repository)" >&2
  exit 1
fi

# The cluster crate's tests start their own OpenSSH servers on loopback and use rsync (#5).
# Install what is missing (Debian); the tests fail loudly, never skip, when these are absent.
need=()
[ -x /usr/sbin/sshd ] || command -v sshd >/dev/null 2>&1 || need+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v rsync >/dev/null 2>&1 || need+=(rsync)
# The terminal tests (#16) run the binaries on a pseudo-terminal through util-linux's `script`.
command -v script >/dev/null 2>&1 || need+=(bsdutils)
# The storage test (#15) reads our compressed results with the standard `zstd -d`, and ours
# with the files it writes.
command -v zstd >/dev/null 2>&1 || need+=(zstd)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    # Keep the package from starting a system-wide sshd: the tests run their own.
    made_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
    [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
  else
    echo "error: the cluster tests need ${need[*]} (install them, or run scripts/test.sh as root on Debian)" >&2
    exit 1
  fi
fi

# The end-to-end tests spawn the workspace's binaries (coordinator, worker, analysis) from the
# target folder; build them first so a partial earlier build never leaves a stale one there.
cargo build --workspace --bins --locked
cargo test --workspace --locked "$@"
