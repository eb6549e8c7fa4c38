/**
 * A TCP proxy in front of the API server that a test can cut: every open
 * connection dropped, and new ones refused until it is resumed. A network
 * partition between the operator and the API server, with real parts on both
 * sides (TLS passes through untouched).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  /** Drops every connection and refuses new ones. */
  partition(): void;
  /**
   * Stops forwarding without closing anything: open connections and new ones
   * stay up and get no byte back, as behind a dropped route. Requests hang.
   */
  stall(): void;
  /** Accepts connections again. */
  heal(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let partitioned = false;
  let stalled = false;
  const server: Server = createServer((client) => {
    if (partitioned) {
      client.destroy();
      return;
    }
    if (stalled) {
      // Held open, never answered.
      sockets.add(client);
      client.on('close', () => sockets.delete(client));
      client.on('error', () => client.destroy());
      client.pause();
      return;
    }
    const upstream = connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
    pairs.push([client, upstream]);
  });
  const pairs: Array<[Socket, Socket]> = [];
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('proxy has no port');
  return {
    port: address.port,
    partition() {
      partitioned = true;
      for (const s of sockets) s.destroy();
    },
    stall() {
      stalled = true;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    heal() {
      partitioned = false;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
