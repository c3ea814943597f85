/** Whether a process exists (a process we may not signal still exists). pid 0 is never "alive": kill(0) would mean our own group. */
export function pidAlive(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
