// How the conformance scripts (riscv-tests.mjs, riscv-arch-test.mjs) build a suite's bare-metal
// test: Debian's riscv64-unknown-elf-gcc for ftvm's RV32IMAC with Zicsr and Zifencei, no C
// library, no start files (each suite brings its own entry and link script).
export const CONFORMANCE_GCC = 'riscv64-unknown-elf-gcc';

export const CONFORMANCE_GCC_FLAGS = [
  '-march=rv32imac_zicsr_zifencei',
  '-mabi=ilp32',
  '-static',
  '-mcmodel=medany',
  '-fvisibility=hidden',
  '-nostdlib',
  '-nostartfiles',
];
