/** Formats log arguments the way console.log would, for logs that cross threads as text. */
import { formatWithOptions } from 'node:util';

export function formatInspect(parts: readonly unknown[]): string {
  return formatWithOptions({ colors: false, depth: 4 }, ...parts);
}
