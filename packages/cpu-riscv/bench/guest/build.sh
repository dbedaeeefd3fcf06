#!/bin/sh
# Builds the benchmark guests (the built ELFs are committed, so the benchmark needs no toolchain).
# Toolchain: Debian 12 gcc-riscv64-unknown-elf 12.2 + picolibc-riscv64-unknown-elf.
set -eu
cd "$(dirname "$0")"
CFLAGS="-march=rv32imac_zicsr -mabi=ilp32 --specs=picolibc.specs -nostartfiles -nostdlib -ffreestanding -O2 -Wl,--no-warn-rwx-segments -T link.ld"
riscv64-unknown-elf-gcc $CFLAGS -DITERATIONS=10000 start.S workload.c -o workload.elf
riscv64-unknown-elf-gcc $CFLAGS -DITERATIONS=0 start.S workload.c -o startup.elf
