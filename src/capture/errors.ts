// Errors raised while reading capture files. Every one names the file, the byte offset and what was wrong,
// so a truncated or corrupt capture is reported precisely instead of crashing or yielding a partial result.

export class CaptureFormatError extends Error {
  override name = 'CaptureFormatError';
  constructor(
    /** File name (or "<buffer>") the error is about. */
    readonly file: string,
    /** Byte offset in the file where the offending structure starts. */
    readonly offset: number,
    /** What was wrong, in words. */
    readonly problem: string,
  ) {
    super(`${file}: byte ${offset}: ${problem}`);
  }
}

/** A capture output that cannot be written as asked (e.g. it is one of the inputs). */
export class CaptureOutputError extends Error {
  override name = 'CaptureOutputError';
}
