/**
 * The guest-program contract (defined by the runner that hosts guest programs): a module whose
 * default export is `main(ctx)`. The runner owns the card: it opens it before `main` and closes
 * it after `main` settles; `main` releases what it created (framebuffers, buffers, modes) and
 * returns promptly once `signal` aborts.
 */
export type { GuestProgram, GuestProgramContext } from '../run/guest-runner.js';
