import { connect, type Socket } from "node:net";

/**
 * A bare SOCKS5 CONNECT (RFC 1928, username auth RFC 1929) that resolves with the reply code
 * (0 = succeeded, 5 = refused, ...) or -1 on timeout or a broken handshake. Only the launcher's
 * reachability probe uses it; traffic goes through socks-proxy-agent.
 */
export function socks5Connect(
  socksPort: number,
  host: string,
  port: number,
  username: string,
  timeoutMs: number,
): Promise<number> {
  return new Promise((resolve) => {
    const s: Socket = connect({ host: "127.0.0.1", port: socksPort });
    let stage = 0;
    let buf = Buffer.alloc(0);
    const done = (code: number) => {
      clearTimeout(timer);
      s.destroy();
      resolve(code);
    };
    const timer = setTimeout(() => done(-1), timeoutMs);
    s.on("error", () => done(-1));
    s.on("connect", () => s.write(Buffer.from([5, 1, 2])));
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (stage === 0 && buf.length >= 2) {
        if (buf[1] !== 2) return done(-1);
        buf = buf.subarray(2);
        stage = 1;
        const u = Buffer.from(username);
        s.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([1, 0x78])]));
      }
      if (stage === 1 && buf.length >= 2) {
        if (buf[1] !== 0) return done(-1);
        buf = buf.subarray(2);
        stage = 2;
        const h = Buffer.from(host);
        s.write(Buffer.concat([Buffer.from([5, 1, 0, 3, h.length]), h, Buffer.from([port >> 8, port & 0xff])]));
      }
      if (stage === 2 && buf.length >= 2) done(buf[1]);
    });
  });
}
