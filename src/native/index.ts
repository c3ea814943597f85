// Typed access to the native helper (src/native/vslab_native.c), built by scripts/build.js.
import * as path from 'path';

export interface NativeHelper {
  netnsCreate(nsPath: string): void;
  netnsDelete(nsPath: string): void;
  netlinkOpen(nsPath: string | null, protocol: number): number;
  netlinkTransact(fd: number, request: Buffer, timeoutMs?: number): Buffer;
  netlinkClose(fd: number): void;
  sysctlWrite(nsPath: string | null, entries: Array<[string, string]>): void;
}

let loaded: NativeHelper | undefined;

export function native(): NativeHelper {
  if (!loaded) {
    const file = path.resolve(__dirname, '..', '..', 'build', 'vslab_native.node');
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      loaded = require(file) as NativeHelper;
    } catch (e) {
      throw new Error(`the native helper ${file} is missing or broken (${(e as Error).message}); run \`npm run build\``);
    }
  }
  return loaded;
}
