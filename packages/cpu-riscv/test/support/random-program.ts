/**
 * A seeded generator of random RV32IMAC test programs (assembly text) for the differential test
 * against QEMU. A program sets every register, runs a random body (ALU, M, loads and stores into a
 * scratch area, atomics, forward branches and jumps, and instructions that trap), then saves the
 * registers and calls `report` (differential-report.c), which prints them, the trap log and a
 * checksum of the scratch area, and powers off.
 *
 * The body runs `iterations` times (x28 counts), so that hot code gets compiled into blocks.
 *
 * Reserved registers: x30 holds the scratch base, x31 the trap log pointer, x29 the address
 * register of atomics, x28 the loop counter. The trap handler logs mcause, mtval and mepc and
 * skips the instruction.
 */

/** mulberry32: a small, fast, seeded PRNG. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SCRATCH_BYTES = 2048;
const TRAP_LOG_ENTRIES = 8192;

export function generateProgram(seed: number, bodyLength: number, iterations = 1): string {
  const random = createRandom(seed);
  const int = (low: number, high: number) => low + Math.floor(random() * (high - low + 1));
  const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)] as T;
  const destination = () => `x${int(1, 27)}`;
  const source = () => `x${int(0, 31)}`;
  const hex = (value: number) => `0x${(value >>> 0).toString(16)}`;
  const interesting = () =>
    pick([0, 1, -1, 0x7fffffff, 0x80000000 | 0, int(-2048, 2047), int(0, 0xffffffff) | 0, 0xffff, 0x8000]);

  const lines: string[] = [];
  let labelCount = 0;
  const pendingLabels: { name: string; remaining: number }[] = [];
  /** Emits instructions that belong together: no forward label lands between them. */
  const emit = (...group: string[]) => {
    for (const line of group) lines.push(`  ${line}`);
    for (const label of pendingLabels) label.remaining--;
    while (pendingLabels.length > 0 && pendingLabels.some((label) => label.remaining <= 0)) {
      const index = pendingLabels.findIndex((label) => label.remaining <= 0);
      const [label] = pendingLabels.splice(index, 1);
      lines.push(`${label?.name}:`);
    }
  };
  const forwardLabel = () => {
    const name = `.Lforward${labelCount++}`;
    pendingLabels.push({ name, remaining: int(1, 6) });
    return name;
  };

  for (let i = 0; i < bodyLength; i++) {
    const kind = random();
    if (kind < 0.22) {
      emit(
        `${pick(['add', 'sub', 'sll', 'slt', 'sltu', 'xor', 'srl', 'sra', 'or', 'and'])} ${destination()}, ${source()}, ${source()}`,
      );
    } else if (kind < 0.32) {
      emit(
        `${pick(['mul', 'mulh', 'mulhsu', 'mulhu', 'div', 'divu', 'rem', 'remu'])} ${destination()}, ${source()}, ${source()}`,
      );
    } else if (kind < 0.5) {
      const op = pick(['addi', 'slti', 'sltiu', 'xori', 'ori', 'andi', 'slli', 'srli', 'srai']);
      const immediate = op.startsWith('s') && op !== 'slti' && op !== 'sltiu' ? int(0, 31) : int(-2048, 2047);
      emit(`${op} ${destination()}, ${source()}, ${immediate}`);
    } else if (kind < 0.54) {
      emit(`${pick(['lui', 'auipc'])} ${destination()}, ${int(0, 0xfffff)}`);
    } else if (kind < 0.56) {
      emit(`li ${destination()}, ${interesting()}`);
    } else if (kind < 0.68) {
      const op = pick(['lb', 'lh', 'lw', 'lbu', 'lhu']);
      emit(`${op} ${destination()}, ${int(0, SCRATCH_BYTES - 4)}(x30)`);
    } else if (kind < 0.78) {
      const op = pick(['sb', 'sh', 'sw']);
      emit(`${op} ${source()}, ${int(0, SCRATCH_BYTES - 4)}(x30)`);
    } else if (kind < 0.82) {
      const op = pick([
        'amoswap.w',
        'amoadd.w',
        'amoxor.w',
        'amoand.w',
        'amoor.w',
        'amomin.w',
        'amomax.w',
        'amominu.w',
        'amomaxu.w',
      ]);
      emit(
        `addi x29, x30, ${int(0, SCRATCH_BYTES / 4 - 1) * 4}`,
        `${op} ${destination()}, ${source()}, (x29)`,
      );
    } else if (kind < 0.84) {
      const group = [`addi x29, x30, ${int(0, SCRATCH_BYTES / 4 - 2) * 4}`, `lr.w ${destination()}, (x29)`];
      if (random() < 0.5) group.push(`sw ${source()}, ${pick([0, 4])}(x29)`);
      if (random() < 0.3) group.push('addi x29, x29, 4');
      group.push(`sc.w ${destination()}, ${source()}, (x29)`);
      emit(...group);
    } else if (kind < 0.92) {
      emit(
        `${pick(['beq', 'bne', 'blt', 'bge', 'bltu', 'bgeu'])} ${source()}, ${source()}, ${forwardLabel()}`,
      );
    } else if (kind < 0.94) {
      emit(`jal ${pick(['x0', 'x1', destination()])}, ${forwardLabel()}`);
    } else if (kind < 0.955) {
      emit(
        `csrr ${destination()}, ${pick(['misa', 'mhartid', 'mvendorid', 'mscratch', 'mcause', 'mtval', 'medeleg'])}`,
      );
    } else if (kind < 0.96) {
      emit(pick(['fence', 'fence.i', 'nop', 'fence rw, rw']));
    } else {
      // Instructions that trap; the handler logs and skips them.
      const trap = int(0, 8);
      if (trap === 0) emit('ecall');
      else if (trap === 1) emit('ebreak');
      else if (trap === 2) emit('c.ebreak');
      else if (trap === 3)
        emit(
          `.word ${hex(pick([0x00007073, 0xfe000033, 0x0000200f, 0x00003003, 0x0000702f, 0x30200073 | (1 << 7)]))}`,
        );
      else if (trap === 4)
        emit(`.half ${hex(pick([0x0000, 0x6001, 0x8002, 0x4002, 0x9c21 | 0x1000, 0x2002]))}`);
      else if (trap === 5) {
        // Only lr.w: QEMU reports misaligned and faulting AMOs with load causes and lets a
        // misaligned sc.w fail without a trap, where the manual says store/AMO causes (README).
        emit(
          `addi x29, x30, ${int(0, SCRATCH_BYTES / 4 - 2) * 4 + pick([1, 2, 3])}`,
          `lr.w ${destination()}, (x29)`,
        );
      } else if (trap === 6) emit(`lw ${destination()}, ${int(0, 64) * 4}(x0)`);
      else if (trap === 7)
        emit(`csrrw ${destination()}, ${pick(['mhartid', 'misa', 'cycle', '0x7c0', 'time'])}, ${source()}`);
      else emit(`sw ${source()}, ${int(0, 64) * 4}(x0)`);
    }
  }
  while (pendingLabels.length > 0) lines.push(`${pendingLabels.pop()?.name}:`);

  const initial = Array.from({ length: 27 }, (_, index) => `  li x${index + 1}, ${interesting()}`);
  const scratchWords = Array.from({ length: SCRATCH_BYTES / 4 }, () => hex(int(0, 0xffffffff)));
  return `# Generated by random-program.ts, seed ${seed}
  .section .text.start
  .globl _start
_start:
  la t0, trap_handler
  csrw mtvec, t0
  la x31, trap_log
  la x30, scratch
${initial.join('\n')}
  li x28, ${iterations}
.Lbody:
${lines.join('\n')}
  addi x28, x28, -1
  bnez x28, .Lbody
  la x30, saved_registers
${Array.from({ length: 29 }, (_, index) => `  sw x${index + 1}, ${(index + 1) * 4}(x30)`).join('\n')}
  la t0, trap_log_end_pointer
  sw x31, 0(t0)
  la sp, __stack_top
  call report
  li t0, 0x100000
  li t1, 0x5555
  sw t1, 0(t0)
1:
  j 1b

  .balign 4
trap_handler:
  csrw mscratch, t0
  csrw sscratch, t1
  csrr t0, mcause
  sw t0, 0(x31)
  csrr t0, mtval
  sw t0, 4(x31)
  csrr t0, mepc
  sw t0, 8(x31)
  lhu t1, 0(t0)
  andi t1, t1, 3
  addi t1, t1, -3
  addi t0, t0, 2
  bnez t1, 2f
  addi t0, t0, 2
2:
  csrw mepc, t0
  addi x31, x31, 12
  csrr t0, mscratch
  csrr t1, sscratch
  mret

  .data
  .balign 4
  .globl scratch, scratch_size, saved_registers, trap_log, trap_log_end_pointer
scratch:
  .word ${scratchWords.join(', ')}
scratch_size:
  .word ${SCRATCH_BYTES}
saved_registers:
  .space 128
trap_log_end_pointer:
  .word 0
  .bss
  .balign 4
trap_log:
  .space ${TRAP_LOG_ENTRIES * 12}
`;
}
