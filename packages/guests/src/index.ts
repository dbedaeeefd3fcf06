/**
 * @ftvm/guests: the guest SDK (C, under sdk/) and prebuilt RV32 guest images (images/*.elf),
 * with the reference QEMU command line every comparison with QEMU uses.
 */
export {
  deterministicLines,
  type ImageName,
  imageNames,
  imagePath,
  isImageName,
  nondeterministicLinePrefix,
  packageRoot,
  sdkPath,
} from './images.js';
export {
  type GuestExit,
  ReferenceQemu,
  type ReferenceQemuOptions,
  referenceQemuArgs,
  referenceQemuAvailable,
  referenceQemuBinary,
  referenceQemuCpu,
  runOnReferenceQemu,
  type UdpForward,
} from './qemu.js';
export { guestCompiler, sdkCompilerArgs } from './sdk-build.js';
export { type ExpectedTranscript, expectedTranscripts, type TranscriptSetup } from './transcripts.js';
