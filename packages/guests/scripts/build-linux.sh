#!/usr/bin/env bash
# Builds images/linux/Image: Debian 12's linux-source-6.1 for rv32, with a built-in initramfs
# holding linux/userland/init.c (the kv service as PID 1, on the kernel's own nolibc).
#
# Usage: bash scripts/build-linux.sh [BUILD_DIR]
#   BUILD_DIR   where the kernel tree is unpacked and built (default: $FTVM_LINUX_BUILD_DIR, else
#               /tmp/ftvm-linux-build); its linux-source-6.1/ and headers/ are replaced.
#
# Needs (Debian 12): linux-source-6.1 gcc-riscv64-linux-gnu bc bison flex cpio kmod libssl-dev
# libelf-dev rsync. Reproducible: with the versions below the Image is the same byte for byte,
# whatever the build directory (check: build twice in two directories and cmp).
set -euo pipefail

# The versions the committed Image was built with (see images/linux/VERSIONS.txt).
readonly EXPECTED_LINUX_SOURCE=6.1.192-3
readonly EXPECTED_GCC=12.2.0-13cross1
readonly EXPECTED_BINUTILS=2.40-2

# One fixed time for the kernel's version string and every file in the initramfs.
readonly BUILD_TIMESTAMP='Wed Jan  1 00:00:00 UTC 2025'

package_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${1:-${FTVM_LINUX_BUILD_DIR:-/tmp/ftvm-linux-build}}
kernel_config_dir=$package_root/linux/kernel
userland_dir=$package_root/linux/userland
out_dir=$package_root/images/linux

export LC_ALL=C TZ=UTC
export ARCH=riscv CROSS_COMPILE=riscv64-linux-gnu-
export KBUILD_BUILD_TIMESTAMP=$BUILD_TIMESTAMP KBUILD_BUILD_USER=ftvm KBUILD_BUILD_HOST=ftvm
export KBUILD_BUILD_VERSION=1 LOCALVERSION=

say() { printf 'build-linux: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

package_version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || true; }

# --- versions -------------------------------------------------------------------------------------
for tool in riscv64-linux-gnu-gcc make bc bison flex cpio tar xz; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install linux-source-6.1 gcc-riscv64-linux-gnu bc bison flex cpio kmod libssl-dev libelf-dev rsync)"
done
[[ -f /usr/src/linux-source-6.1.tar.xz ]] || die "/usr/src/linux-source-6.1.tar.xz is missing (apt-get install linux-source-6.1)"

linux_source_version=$(package_version linux-source-6.1)
gcc_version=$(package_version gcc-12-riscv64-linux-gnu)
binutils_version=$(package_version binutils-riscv64-linux-gnu)
versions_match=true
check_version() {
  local what=$1 found=$2 expected=$3
  if [[ $found != "$expected" ]]; then
    say "warning: $what is ${found:-not a Debian package here}, not $expected: the Image will differ from the committed one"
    versions_match=false
  fi
}
check_version linux-source-6.1 "$linux_source_version" "$EXPECTED_LINUX_SOURCE"
check_version gcc-12-riscv64-linux-gnu "$gcc_version" "$EXPECTED_GCC"
check_version binutils-riscv64-linux-gnu "$binutils_version" "$EXPECTED_BINUTILS"

# --- the kernel tree ------------------------------------------------------------------------------
say "unpacking linux-source-6.1 $linux_source_version into $build_dir"
mkdir -p "$build_dir"
build_dir=$(cd "$build_dir" && pwd) # the build changes directory
rm -rf "$build_dir/linux-source-6.1" "$build_dir/headers"
tar -C "$build_dir" -xf /usr/src/linux-source-6.1.tar.xz
src=$build_dir/linux-source-6.1
[[ -f $src/Makefile ]] || die "the tarball did not unpack to linux-source-6.1/"
cd "$src"

# --- the userland: init, on nolibc and the tree's own UAPI headers ---------------------------------
say "building the init"
make -s headers_install INSTALL_HDR_PATH="$build_dir/headers"
mkdir -p usr/ftvm
riscv64-linux-gnu-gcc \
  -march=rv32imac_zicsr_zifencei -mabi=ilp32 -static -nostdlib -nostdinc -ffreestanding \
  -fno-asynchronous-unwind-tables -fno-ident -O2 -Wall -Wextra -Werror -s \
  -isystem "$(riscv64-linux-gnu-gcc -print-file-name=include)" \
  -I "$build_dir/headers/include" -I "$userland_dir/include" \
  -include "$userland_dir/nolibc-rv32.h" -include tools/include/nolibc/nolibc.h \
  -o usr/ftvm/init "$userland_dir/init.c"
touch -d "$BUILD_TIMESTAMP" usr/ftvm/init # gen_init_cpio takes a file's mtime from the file

# The initramfs, as a gen_init_cpio list: fixed owners and modes; directories and device nodes get
# KBUILD_BUILD_TIMESTAMP. /dev/console must exist before /dev is mounted: the kernel opens it for
# init's stdin, stdout and stderr.
cat >usr/ftvm_initramfs.list <<'EOF'
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /proc 0755 0 0
dir /sys 0755 0 0
file /init usr/ftvm/init 0755 0 0
EOF

# --- configuration: tinyconfig, then the fragment, then olddefconfig -------------------------------
say "configuring (tinyconfig + linux/kernel/ftvm_rv32.config)"
cp "$kernel_config_dir/ftvm_rv32.config" arch/riscv/configs/ftvm_rv32.config
# merge_config.sh (the %.config target) reports every symbol the fragment overrides: keep that in a log.
{ make -s tinyconfig && make -s ftvm_rv32.config && make -s olddefconfig; } >"$build_dir/config.log" 2>&1 ||
  { cat "$build_dir/config.log" >&2; die "configuring failed"; }

# Every line of the fragment must have survived (a dependency can silently veto one).
while IFS= read -r line; do
  case $line in
  CONFIG_*=*)
    grep -qxF -- "$line" .config || die "the fragment asks for $line, but .config has $(grep "^${line%%=*}=" .config || echo 'it unset')"
    ;;
  '# CONFIG_'*' is not set')
    symbol=${line#\# }
    symbol=${symbol%% *}
    ! grep -q "^$symbol=" .config || die "the fragment unsets $symbol, but .config has $(grep "^$symbol=" .config)"
    ;;
  esac
done <"$kernel_config_dir/ftvm_rv32.config"

if ! diff -u "$kernel_config_dir/config" .config >"$build_dir/config.diff"; then
  if $versions_match; then
    cat "$build_dir/config.diff" >&2
    die "the generated .config differs from linux/kernel/config (above); if that is intended: cp $src/.config $kernel_config_dir/config"
  fi
  say "warning: the generated .config differs from linux/kernel/config (other versions): $build_dir/config.diff"
fi

# --- the kernel -----------------------------------------------------------------------------------
say "building the kernel (make -j$(nproc) Image)"
nice -n 10 make -s -j"$(nproc)" Image

mkdir -p "$out_dir"
cp arch/riscv/boot/Image "$out_dir/Image"
{
  echo "linux-source-6.1 $linux_source_version ($(make -s kernelversion))"
  echo "gcc-12-riscv64-linux-gnu $gcc_version ($(riscv64-linux-gnu-gcc --version | head -n 1))"
  echo "binutils-riscv64-linux-gnu $binutils_version ($(riscv64-linux-gnu-ld --version | head -n 1))"
  echo "KBUILD_BUILD_TIMESTAMP=$KBUILD_BUILD_TIMESTAMP KBUILD_BUILD_USER=ftvm KBUILD_BUILD_HOST=ftvm KBUILD_BUILD_VERSION=1"
} >"$out_dir/VERSIONS.txt"
say "wrote $out_dir/Image ($(stat -c %s "$out_dir/Image") bytes, sha256 $(sha256sum "$out_dir/Image" | cut -d' ' -f1))"
