import { connect, type Socket } from "node:net";
import { check, PetraError } from "../../common/errors";
import { TorControl, type TorControlOptions } from "./tor-control";
import type { TorClientEndpoint } from "./tor-network";

/**
 * The launcher's second mode: a Tor client someone else runs (a system tor on 9050/9051, Tor
 * Browser's 9150/9151), which is how the lab's transport reaches the public Tor network.
 */

/** Options for useExistingTor: "HOST:PORT" strings on loopback (a Tor SOCKS port must not be exposed beyond it). */
export interface ExistingTorOptions {
  /** SOCKS endpoint, e.g. "127.0.0.1:9050". */
  socks: string;
  /** Control endpoint, e.g. "127.0.0.1:9051"; without it NEWNYM and circuit inspection are unavailable. */
  control?: string;
  password?: string;
  cookiePath?: string;
  /** Check the client is bootstrapped (needs control). Default true when control is given. */
  requireBootstrapped?: boolean;
}

function hostPort(value: string, parameter: string): { host: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(value);
  check(m !== null && Number(m[2]) > 0 && Number(m[2]) < 65536, parameter, 'expected "HOST:PORT"', { value });
  const host = m![1] === "localhost" ? "127.0.0.1" : m![1];
  check(/^127\.\d+\.\d+\.\d+$/.test(host), parameter, "must be a loopback address (127.x.y.z or localhost)", { value });
  return { host, port: Number(m![2]) };
}

/**
 * Uses a Tor client someone else runs. Checks that the SOCKS port accepts connections and, if a
 * control port is given, that authentication works and bootstrap is at 100%.
 */
export async function useExistingTor(options: ExistingTorOptions): Promise<TorClientEndpoint> {
  const socks = hostPort(options.socks, "socks");
  await new Promise<void>((resolve, reject) => {
    const s: Socket = connect(socks);
    s.once("connect", () => {
      s.destroy();
      resolve();
    });
    s.once("error", (e: Error) =>
      reject(
        new PetraError("TOR_CONTROL_FAILED", `no Tor SOCKS port at ${options.socks}: ${e.message}`, {
          socks: options.socks,
        }),
      ),
    );
  });
  let control: TorControlOptions | undefined;
  if (options.control) {
    const c = hostPort(options.control, "control");
    control = { host: c.host, port: c.port, password: options.password, cookiePath: options.cookiePath };
    const conn = await TorControl.connect(control);
    try {
      const phase = await conn.bootstrapPhase();
      if ((options.requireBootstrapped ?? true) && phase.progress < 100) {
        throw new PetraError(
          "TOR_BOOTSTRAP_TIMEOUT",
          `existing tor at ${options.control} is at ${phase.progress}% (${phase.summary})`,
          {
            progress: phase.progress,
          },
        );
      }
    } finally {
      conn.close();
    }
  }
  return { name: "existing", socksHost: socks.host, socksPort: socks.port, control };
}
