// Whether a process recorded by pid on this host still runs. Shared by the lock (a lock
// file whose holder is gone is taken over) and the scratch-folder sweep (a folder whose
// owner is gone is removed).

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
