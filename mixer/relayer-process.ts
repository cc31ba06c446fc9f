/**
 * The relayer as a process, for the live runner to spawn:
 *
 *   node -r ts-node/register/transpile-only mixer/relayer-process.ts --config relayer.json
 *
 * Config (JSON):
 *   {
 *     "rpcUrl": "http://127.0.0.1:8545",
 *     "privateKey": "0x...",                 // the relayer's funded account; only this process uses it
 *     "pools": ["0x..."], "vaults": ["0x..."],
 *     optional: "host" (default 127.0.0.1), "port" (default 0: a free one),
 *     "fees": {"mixer": "10", "allowance": "10", "gasDrop": "10"} (money units),
 *     "gasDropWei": "0" (decimal string; "0" = no gas drops), "rpcTimeoutMs" (default 10 000)
 *   }
 *
 * Stdout carries one JSON line per lifecycle event:
 *   {"event":"ready","pid":..,"url":"http://127.0.0.1:41234","relayer":"0x.."}
 *   {"event":"stopped","pid":..}
 * Each answered request is logged to stderr as {"event":"request",...}. SIGTERM or SIGINT stops it
 * (exit 0); a bad config exits 2 naming the field; no node at start exits 1.
 */
import { readFileSync } from "node:fs";
import { FetchRequest, JsonRpcProvider, Network } from "ethers";
import { z } from "zod";
import { PetraError } from "../common/errors";
import { Relayer, type RelayerFees } from "./relayer";

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be an address");
const decimal = z.string().regex(/^[0-9]+$/, "must be a decimal string");

export const relayerProcessConfigSchema = z
  .object({
    rpcUrl: z.string().url(),
    privateKey: z.string().regex(/^0x[0-9a-fA-F]{64}$/, "must be 0x + 32 bytes of hex"),
    pools: z.array(address),
    vaults: z.array(address).default([]),
    host: z.string().min(1).default("127.0.0.1"),
    port: z.number().int().min(0).max(65535).default(0),
    fees: z.object({ mixer: decimal, allowance: decimal, gasDrop: decimal }).partial().strict().default({}),
    gasDropWei: decimal.default("0"),
    rpcTimeoutMs: z.number().int().positive().default(10_000),
  })
  .strict();
export type RelayerProcessConfig = z.input<typeof relayerProcessConfigSchema>;

function line(event: Record<string, unknown>, stream: NodeJS.WriteStream = process.stdout): void {
  stream.write(`${JSON.stringify(event)}\n`);
}

export function loadRelayerConfig(path: string): z.infer<typeof relayerProcessConfigSchema> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new PetraError("INVALID_ARGUMENT", `config: cannot read ${path} as JSON: ${(e as Error).message}`, {
      parameter: "config",
    });
  }
  const parsed = relayerProcessConfigSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue && issue.path.length > 0 ? issue.path.join(".") : "(root)";
    throw new PetraError("INVALID_ARGUMENT", `config ${path}: ${field}: ${issue?.message}`, { parameter: field });
  }
  return parsed.data;
}

async function main(argv: string[]): Promise<number> {
  const i = argv.indexOf("--config");
  const configPath = i >= 0 ? argv[i + 1] : undefined;
  if (configPath === undefined) {
    line(
      { event: "error", code: "INVALID_ARGUMENT", message: "usage: relayer-process.ts --config FILE" },
      process.stderr,
    );
    return 2;
  }
  let c: z.infer<typeof relayerProcessConfigSchema>;
  try {
    c = loadRelayerConfig(configPath);
  } catch (e) {
    line({ event: "error", code: (e as PetraError).code, message: (e as Error).message }, process.stderr);
    return 2;
  }
  // A short timeout: a hung node must become a 503, not a client waiting for minutes.
  const request = new FetchRequest(c.rpcUrl);
  request.timeout = c.rpcTimeoutMs;
  let chainId: bigint;
  const probe = new JsonRpcProvider(request.clone(), undefined, { batchMaxCount: 1 });
  try {
    chainId = BigInt(await probe.send("eth_chainId", []));
  } catch (e) {
    line(
      { event: "error", code: "RPC_UNAVAILABLE", message: `no JSON-RPC node at ${c.rpcUrl}: ${String(e)}` },
      process.stderr,
    );
    return 1;
  } finally {
    probe.destroy();
  }
  const provider = new JsonRpcProvider(request, Network.from(chainId), {
    staticNetwork: true,
    batchMaxCount: 1,
    cacheTimeout: -1,
    pollingInterval: 100,
  });
  const fees: Partial<RelayerFees> = {};
  if (c.fees.mixer !== undefined) fees.mixer = BigInt(c.fees.mixer);
  if (c.fees.allowance !== undefined) fees.allowance = BigInt(c.fees.allowance);
  if (c.fees.gasDrop !== undefined) fees.gasDrop = BigInt(c.fees.gasDrop);
  const relayer = new Relayer({
    provider,
    privateKey: c.privateKey,
    pools: c.pools,
    vaults: c.vaults,
    fees,
    gasDropWei: BigInt(c.gasDropWei),
    host: c.host,
    port: c.port,
    onRequest: (e) => line({ event: "request", ...e, ms: Math.round(e.ms) }, process.stderr),
  });
  let url: string;
  try {
    url = await relayer.start();
  } catch (e) {
    line(
      { event: "error", code: (e as PetraError).code ?? "PROCESS_FAILED", message: (e as Error).message },
      process.stderr,
    );
    await relayer.stop();
    provider.destroy();
    return 1;
  }
  line({ event: "ready", pid: process.pid, url, relayer: relayer.address });
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });
  const stats = relayer.stats;
  await relayer.stop();
  provider.destroy();
  line({
    event: "stopped",
    pid: process.pid,
    relayed: stats.relayed,
    refused: stats.refused,
    gasPaidWei: stats.gasPaidWei.toString(),
    feesEarned: stats.feesEarned.toString(),
  });
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      line({ event: "error", code: "PROCESS_FAILED", message: (e as Error)?.message ?? String(e) }, process.stderr);
      process.exit(1);
    },
  );
}
