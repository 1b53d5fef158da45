/** Whether an executable named `tool` is on PATH (interop tests fail, never skip, without it). */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';

export async function onPath(tool: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    try {
      await access(path.join(dir, tool), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}
