/**
 * A VNC client in its own process for the VNC benchmark (so decoding does not share the server's
 * thread): connects, asks for one encoding with continuous updates and fences, decodes every
 * update (test/support/rfb-test-client.ts, strict) and prints one JSON line per update:
 * { t: ms since the epoch when its last byte arrived, bytes }. Ends when stdin closes.
 *
 * Usage: node --import tsx bench/vnc-client-child.ts PORT ENCODING
 */
import { RfbTestClient } from '../test/support/rfb-test-client.js';

const port = Number(process.argv[2]);
const encoding = Number(process.argv[3] ?? 16);
const client = await RfbTestClient.connect({ port });
// Continuous updates (-313), fences (-312), DesktopSize (-223), LastRect (-224), CopyRect (1).
client.setEncodings([encoding, 1, -313, -312, -223, -224]);
client.requestUpdate(false);
let cuOn = false;
process.stdin.on('end', () => {
  client.close();
  process.exit(0);
});
process.stdin.resume();
for (;;) {
  const u = await client.nextUpdate(30_000);
  process.stdout.write(`${JSON.stringify({ t: u.receivedAt, bytes: u.bytes })}\n`);
  if (!cuOn && client.endOfContinuousUpdates > 0) {
    cuOn = true;
    client.enableContinuousUpdates(true);
  } else if (!cuOn) client.requestUpdate(true);
}
