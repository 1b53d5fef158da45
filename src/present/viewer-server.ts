/**
 * The browser viewer's server: HTTP on 127.0.0.1 serving the page, and a WebSocket (`/ws`) per
 * page carrying the ViewerFeed's messages one way and acknowledgements the other.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type { ViewerClient, ViewerFeed } from './viewer-feed.js';
import { VIEWER_PAGE } from './viewer-page.js';

export interface ViewerServerOptions {
  readonly feed: ViewerFeed;
  /** 0: any free port. */
  readonly port?: number;
  readonly host?: string;
}

export class ViewerServer {
  private constructor(
    private readonly http: Server,
    private readonly wss: WebSocketServer,
    readonly host: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://${this.host}:${this.port}/`;
  }

  static async start(opts: ViewerServerOptions): Promise<ViewerServer> {
    const host = opts.host ?? '127.0.0.1';
    const feed = opts.feed;
    const http = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'GET' && (path === '/' || path === '/index.html')) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        res.end(VIEWER_PAGE);
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
      }
    });
    const wss = new WebSocketServer({ server: http, path: '/ws', maxPayload: 64 * 1024 });
    wss.on('connection', (ws) => {
      const client: ViewerClient = {
        sendFrame: (m) => ws.send(m, { binary: true }),
        sendJson: (m) => ws.send(JSON.stringify(m)),
      };
      feed.addClient(client);
      ws.on('message', (data, isBinary) => {
        if (isBinary) return;
        try {
          const m = JSON.parse(Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8')) as { type?: string; id?: number; seq?: number; t?: number };
          if (m.type === 'ack' && typeof m.id === 'number' && typeof m.seq === 'number') feed.ack(client, m.id, m.seq, typeof m.t === 'number' ? m.t : NaN);
        } catch {
          // A page sending garbage gets nothing more for it.
        }
      });
      ws.on('close', () => feed.removeClient(client));
      ws.on('error', () => feed.removeClient(client));
    });
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(opts.port ?? 0, host, () => resolve());
    });
    const port = (http.address() as AddressInfo).port;
    return new ViewerServer(http, wss, host, port);
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
    await new Promise<void>((r) => this.http.close(() => r()));
  }
}
