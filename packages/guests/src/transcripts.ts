import type { ImageName } from './images.js';

/** What an image needs attached to give its expected transcript. */
export interface TranscriptSetup {
  /** A zero-filled raw disk of this many bytes, attached as virtio-blk. */
  blankDiskBytes?: number;
  /** A virtio-rng device. */
  rng?: boolean;
  /** The kernel command line (/chosen/bootargs; QEMU `-append`). */
  bootArgs?: string;
}

/** What a run-to-completion image prints (deterministic lines only) and its exit status. */
export interface ExpectedTranscript {
  setup: TranscriptSetup;
  lines: readonly string[];
  exitStatus: number;
}

/**
 * The deterministic transcripts of the images that run to completion, as seen on the reference
 * QEMU with 64 MiB and the given setup. ftvm must print the same (compare with deterministicLines).
 * memtouch ends so soon only with its setup's command line. echo and kv are servers: see the tests
 * in network.test.ts for their behaviour.
 */
export const expectedTranscripts: Readonly<Record<Exclude<ImageName, 'echo' | 'kv'>, ExpectedTranscript>> = {
  hello: {
    setup: {},
    lines: [
      'hello from ftvm guest (hart 0)',
      'hello: root compatible = riscv-virtio',
      'hello: memory at 0x80000000, 64 MiB',
      'hello: uart serial@10000000 at 0x10000000, irq 10',
      'hello: timebase 10000000 Hz',
      'hello: goodbye',
    ],
    exitStatus: 0,
  },
  bench: {
    setup: {},
    lines: [
      'bench: 6000 iterations of lists, matrices, state machine, crc',
      'bench: iteration crc 0x0e779e6f (expected 0x0e779e6f)',
      'bench: combined crc 0x59976bba',
      'bench: ok',
    ],
    exitStatus: 0,
  },
  clock: {
    setup: {},
    lines: [
      'clock: reading mtime and the rtc',
      'clock: rtc is after 2020-01-01: yes',
      'clock: sleep 1 of 20 ms: woke on time or later',
      'clock: sleep 2 of 20 ms: woke on time or later',
      'clock: sleep 3 of 20 ms: woke on time or later',
      'clock: timer interrupts taken: 3',
      'clock: mtime advanced by at least 60 ms: yes',
      'clock: rtc did not go backwards: yes',
      'clock: ok',
    ],
    exitStatus: 0,
  },
  paging: {
    setup: {},
    lines: [
      'paging: starting in machine mode',
      'paging: pmp programmed',
      'paging: page tables built (user program 289 bytes)',
      'paging: entering supervisor mode',
      'kernel: running in supervisor mode',
      'kernel: Sv32 paging on',
      'user: hello from user mode',
      'user: 0x12345678',
      'user: 0xdef01234',
      'kernel: load fault at 0x00030010: mapped a zero page',
      'user: 0x00000000',
      'user: 0x0000abcd',
      'user: 0x160f0801',
      'kernel: store fault at 0x00050004: page made writable',
      'user: 0x000055aa',
      'kernel: fetch fault at 0x00060000: mapped code',
      'user: 0x0000002a',
      'user: 0xfeedbeef',
      'kernel: load fault at 0x80000000 refused',
      'user: 0x0000dead',
      'user: 0x0000002a',
      'kernel: user program exited with 0 after 4 page faults',
      'kernel: code page: A=1 D=0',
      'kernel: data page: A=1 D=1',
      'kernel: zero-filled page: A=1 D=1',
      'kernel: read-only page made writable: A=1 D=1',
      'kernel: fetched page: A=1 D=0',
      'kernel: stack page: A=1 D=1',
      'kernel: megapage: A=1 D=1',
      'kernel: load fault at 0x00020000 from supervisor mode (user page, SUM clear): setting SUM',
      'kernel: user data word = 0x12345678',
      'kernel: megapage word through its physical address = 0xfeedbeef',
      'paging: ok',
    ],
    exitStatus: 0,
  },
  rng: {
    setup: { rng: true },
    lines: ['rng: virtio-rng found', 'rng: read 256 bytes', 'rng: bytes look random: yes'],
    exitStatus: 0,
  },
  disk: {
    setup: { blankDiskBytes: 1 << 20 },
    lines: [
      'disk: virtio-blk with 2048 sectors (1024 KiB)',
      'disk: unwritten sector reads as zeros: yes',
      'disk: wrote and read back 64 sectors at 0: match, checksum 0xa0d79dc5',
      'disk: wrote and read back 300 sectors at 100: match, checksum 0xaff5bbc5',
      'disk: last sector written and read back: yes',
      'disk: driver refuses a request past the end: yes',
      'disk: device answers a read past the end with status 1 (IOERR)',
      'disk: ok',
    ],
    exitStatus: 0,
  },
  diskbench: {
    setup: { blankDiskBytes: 16 << 20 },
    lines: [
      'diskbench: 16384 KiB in 64 KiB requests',
      'diskbench: read back what was written: yes',
      'diskbench: ok',
    ],
    exitStatus: 0,
  },
  dmarace: {
    setup: { blankDiskBytes: 1 << 20 },
    lines: [
      'dmarace: virtio-blk with 2048 sectors',
      'dmarace: read race done; buffer matches the disk afterwards: yes',
      'dmarace: write race done; disk readable afterwards: yes',
      'dmarace: ok',
    ],
    exitStatus: 0,
  },
  // Without bootArgs memtouch runs 1,000,000 rounds (minutes); its lines up to round 1024 are these.
  memtouch: {
    setup: { bootArgs: 'rounds=1024' },
    lines: [
      'memtouch: 64 MiB of RAM at 0x80000000, free 0x80115000-0x83e00000',
      'memtouch: filled 60 MiB',
      'memtouch: working set 256 pages (every 60 pages), checksum every 64 rounds',
      'memtouch: round 64 checksum 0x60e2a51a',
      'memtouch: round 128 checksum 0xbbf6ed71',
      'memtouch: round 192 checksum 0x56341848',
      'memtouch: round 256 checksum 0xfca89916',
      'memtouch: round 320 checksum 0x606cea80',
      'memtouch: round 384 checksum 0x58a5a6ae',
      'memtouch: round 448 checksum 0xea350411',
      'memtouch: round 512 checksum 0x0e134626',
      'memtouch: round 576 checksum 0x8d651051',
      'memtouch: round 640 checksum 0xee8507fe',
      'memtouch: round 704 checksum 0x0d607632',
      'memtouch: round 768 checksum 0xce484179',
      'memtouch: round 832 checksum 0x5e47e1ec',
      'memtouch: round 896 checksum 0x3c4c5af7',
      'memtouch: round 960 checksum 0x17a4d2aa',
      'memtouch: round 1024 checksum 0xd965e7ea',
      'memtouch: ok after 1024 rounds, full sweeps checked: 1',
    ],
    exitStatus: 0,
  },
};
