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

# The backend's digits end-to-end test (#13) reads scikit-learn's 8x8 digits data
# (sklearn/datasets/data/digits.csv.gz, 1,797 images, the label in the last column) from a cache
# folder outside the repository: fetched once from PyPI with pip (the wheel, no dependencies), then
# only that file is kept. The test fails, naming this path, when it is missing.
SKLEARN_VERSION=1.9.1
cache="${APPARATE_TEST_CACHE:-$HOME/.cache/apparate-tests}"
export APPARATE_DIGITS_CSV="$cache/digits/digits.csv.gz"
if [ ! -s "$APPARATE_DIGITS_CSV" ]; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip
    else
      echo "error: the digits test needs pip to fetch scikit-learn's digits data (install python3-pip, or run scripts/test.sh as root on Debian)" >&2
      exit 1
    fi
  fi
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps "scikit-learn==$SKLEARN_VERSION" -d "$tmp"
  mkdir -p "$cache/digits"
  python3 - "$tmp" "$APPARATE_DIGITS_CSV" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/scikit_learn-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2] + ".tmp", "wb") as out:
    out.write(z.read("sklearn/datasets/data/digits.csv.gz"))
PY
  mv "$APPARATE_DIGITS_CSV.tmp" "$APPARATE_DIGITS_CSV"
  rm -rf "$tmp"
fi

# The end-to-end tests spawn the workspace's binaries (coordinator, worker, analysis) from the
# target folder; build them first so a partial earlier build never leaves a stale one there.
cargo build --workspace --bins --locked
cargo test --workspace --locked "$@"
