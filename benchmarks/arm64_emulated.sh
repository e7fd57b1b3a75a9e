#!/bin/sh
# Runs a built bundle on aarch64 under qemu user-mode emulation: a Debian arm64 root made by
# debootstrap, Debian's qemu-user-static registered with binfmt_misc, and aarch64 wheels from
# PyPI (onnxruntime, tokenizers, llguidance, numpy ...). The ONNX path needs no compiler there:
# the bundle carries its grammars, so llama-cpp-python is not installed. Needs root. Times are
# emulation times: they say nothing about a device's speed.
#
#   edgeagent build --target android-arm64 --out dist/android-arm64
#   sudo benchmarks/arm64_emulated.sh dist/android-arm64 "Set a timer for 12 minutes"
set -eu

BUNDLE=$(realpath "${1:-dist/android-arm64}")
PROMPT=${2:-Set a timer for 12 minutes}
ROOT=${ARM64_ROOT:-/var/tmp/edgeagent-arm64}
SRC=$(cd "$(dirname "$0")/.." && pwd)

command -v qemu-aarch64-static >/dev/null || apt-get install -y qemu-user-static
command -v debootstrap >/dev/null || apt-get install -y debootstrap
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || cat /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register

if [ ! -x "$ROOT/usr/bin/python3" ]; then
    debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$ROOT"
fi
# pip in the root trusts what this machine trusts, and resolves names as it does
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
# /sys stays unmounted: onnxruntime's cpuinfo reads this host's x86 sysfs and crashes under qemu

inside() { chroot "$ROOT" env -i PATH=/usr/bin:/bin HOME=/root EDGEAGENT_HOME=/tmp/edgeagent "$@"; }
if [ ! -x "$ROOT/venv/bin/python" ]; then
    inside python3 -m venv /venv
    inside /venv/bin/pip install -q onnxruntime tokenizers llguidance numpy 'pydantic>=2.7,<3' \
        'jsonschema>=4.18,<5' 'docstring-parser>=0.16,<1' 'jinja2>=3.1,<4' 'click>=8.1,<9' \
        'gguf>=0.17,<0.20'
fi
rm -rf "$ROOT/src" "$ROOT/bundle"
mkdir "$ROOT/src"
(cd "$SRC" && git archive HEAD) | tar -x -C "$ROOT/src"
inside /venv/bin/pip install -q --no-deps --force-reinstall /src
cp -r "$BUNDLE" "$ROOT/bundle"

inside uname -m
inside /venv/bin/python -c "import onnxruntime; print('onnxruntime', onnxruntime.__version__)"
time inside /venv/bin/python -m edgeagent verify /bundle
time inside env PYTHON=/venv/bin/python /bundle/run.sh "$PROMPT" --json
