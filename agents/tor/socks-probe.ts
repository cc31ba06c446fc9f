import { connect } from "node:net";
import { socks5Handshake } from "./socks-tunnel";

/**
 * A bare SOCKS5 CONNECT through the proxy at 127.0.0.1:`socksPort` (the handshake of
 * socks-tunnel.ts) that resolves with the reply code (0 = succeeded, 5 = refused, ...) or -1 on
 * timeout or a broken handshake, and closes the connection. The launchers' reachability probe.
 */
export function socks5Connect(
  socksPort: number,
  host: string,
  port: number,
  username: string,
  timeoutMs: number,
): Promise<number> {
  const socket = connect({ host: "127.0.0.1", port: socksPort });
  socket.on("error", () => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<number>((resolve) => {
    timer = setTimeout(() => resolve(-1), timeoutMs);
  });
  const handshake = socks5Handshake(socket, { username, password: "petra", host, port }).then((r) =>
    r.ok ? 0 : (r.code ?? -1),
  );
  return Promise.race([handshake, timeout]).finally(() => {
    clearTimeout(timer);
    socket.destroy();
  });
}
