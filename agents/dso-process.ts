import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { JsonRpcProvider, Network, Wallet } from "ethers";
import { z } from "zod";
import { PetraError } from "../common/errors";
import { useFastKeccakInEthers } from "../common/fast-crypto";
import { AccountBook } from "./account-book";
import { LiveClock } from "./clock-live";
import { Dso } from "./dso";
import { AllowanceDesk } from "./dso-allowance-desk";
import { publicKeyHex, signingKeyFromHex } from "./envelope";
import { HouseholdRegistry, registrySchema } from "./household-registry";
import { describeZodError } from "./messages";

/**
 * The DSO as a process, for the live runner to spawn:
 *
 *   node -r ts-node/register agents/dso-process.ts --config dso.json
 *
 * Config (JSON; paths relative to the config file):
 *   {
 *     "rpcUrl": "http://127.0.0.1:8545",
 *     "marketAddress": "0x...",
 *     "dsoPrivateKey": "0x...",          // the market's DSO account; only this process may use it
 *     "signingKeyHex": "...",            // 32-byte Ed25519 secret for envelope signatures
 *     "endpoint": "tcp://127.0.0.1:5555",
 *     "dbPath": "dso.sqlite",
 *     "registry": { "feeders": [...], "households": [...] }  or  "registry.json",
 *     optional: "maxClockSkewMs", "maxBatchRequests", "maxBatchAssets", "gasFundingWei" (decimal
 *     string, "0" = off), "logPollIntervalMs", "receiptPollIntervalMs", "retryDelayMs",
 *     "fromBlock", "synchronous" ("FULL" | "NORMAL"),
 *     "allowanceDesk": {"endpoint": "tcp://127.0.0.1:*", "vaults": {"consumption": "0x..", "production": "0x.."},
 *                       "pools": ["0x.."], "maxWindowIntervals": 672}   (agents/dso-allowance-desk.ts; off when absent)
 *   }
 *
 * Stdout carries one JSON line per lifecycle event, so the runner can wait for readiness:
 *   {"event":"ready","pid":..,"endpoint":"tcp://127.0.0.1:5555","dsoAddress":"0x..","dsoPublicKeyHex":"..",
 *    "deskEndpoint":"tcp://127.0.0.1:5556" (with allowanceDesk)}
 *   {"event":"stopped","pid":..}
 * Diagnostics go to stderr as {"event":"error",...} lines. SIGTERM or SIGINT stops it cleanly
 * (exit 0); a bad config exits 2 with the offending field named; a failure to start exits 1.
 */

export const dsoProcessConfigSchema = z
  .object({
    rpcUrl: z.string().url(),
    marketAddress: z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be an address"),
    dsoPrivateKey: z.string().regex(/^0x[0-9a-fA-F]{64}$/, "must be 0x + 32 bytes of hex"),
    signingKeyHex: z.string().regex(/^(0x)?[0-9a-fA-F]{64}$/, "must be 32 bytes of hex"),
    endpoint: z.string().min(1),
    dbPath: z.string().min(1),
    registry: z.union([z.string().min(1), registrySchema]),
    maxClockSkewMs: z.number().int().positive().optional(),
    maxBatchRequests: z.number().int().positive().optional(),
    maxBatchAssets: z.number().int().positive().optional(),
    gasFundingWei: z
      .string()
      .regex(/^[0-9]+$/)
      .optional(),
    logPollIntervalMs: z.number().int().positive().optional(),
    receiptPollIntervalMs: z.number().int().positive().optional(),
    retryDelayMs: z.number().int().positive().optional(),
    fromBlock: z.number().int().min(0).optional(),
    synchronous: z.enum(["FULL", "NORMAL"]).optional(),
    /** The allowance desk (zk withdrawals): on the same account book, its own endpoint. */
    allowanceDesk: z
      .object({
        endpoint: z.string().min(1),
        vaults: z
          .object({
            consumption: z
              .string()
              .regex(/^0x[0-9a-fA-F]{40}$/, "must be an address")
              .optional(),
            production: z
              .string()
              .regex(/^0x[0-9a-fA-F]{40}$/, "must be an address")
              .optional(),
          })
          .strict(),
        pools: z.array(z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be an address")),
        maxWindowIntervals: z.number().int().positive().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type DsoProcessConfig = z.infer<typeof dsoProcessConfigSchema>;

/** Reads and validates a config file; errors name the field (INVALID_ARGUMENT). */
export function loadDsoProcessConfig(path: string): { config: DsoProcessConfig; registry: HouseholdRegistry } {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new PetraError("INVALID_ARGUMENT", `config: cannot read ${path} as JSON: ${(e as Error).message}`, {
      parameter: "config",
    });
  }
  const parsed = dsoProcessConfigSchema.safeParse(json);
  if (!parsed.success)
    throw new PetraError("INVALID_ARGUMENT", `config ${path}: ${describeZodError(parsed.error)}`, {
      parameter: "config",
    });
  const config = parsed.data;
  const base = dirname(resolve(path));
  let registryInput: unknown = config.registry;
  if (typeof config.registry === "string") {
    const registryPath = resolve(base, config.registry);
    try {
      registryInput = JSON.parse(readFileSync(registryPath, "utf8"));
    } catch (e) {
      throw new PetraError(
        "INVALID_ARGUMENT",
        `config.registry: cannot read ${registryPath}: ${(e as Error).message}`,
        { parameter: "registry" },
      );
    }
  }
  return {
    config: { ...config, dbPath: resolve(base, config.dbPath) },
    registry: new HouseholdRegistry(registryInput),
  };
}

export interface RunningDso {
  dso: Dso;
  endpoint: string;
  /** With config.allowanceDesk. */
  desk?: AllowanceDesk;
  deskEndpoint?: string;
  stop(): Promise<void>;
}

/** Builds and starts the DSO from a config; `stop` releases the socket, the book and the provider. */
export async function startDsoFromConfig(
  config: DsoProcessConfig,
  registry: HouseholdRegistry,
  onError?: (e: unknown) => void,
): Promise<RunningDso> {
  const clock = new LiveClock();
  // ethers' request batching and its 250 ms cache both hurt a DSO that sends in bursts (TOOLCHAIN.md).
  const probe = new JsonRpcProvider(config.rpcUrl, undefined, { batchMaxCount: 1 });
  let chainId: number;
  try {
    chainId = Number((await probe.getNetwork()).chainId);
  } catch (e) {
    throw new PetraError(
      "RPC_UNAVAILABLE",
      `no JSON-RPC node at ${config.rpcUrl}`,
      { rpcUrl: config.rpcUrl },
      { cause: e },
    );
  } finally {
    probe.destroy();
  }
  const provider = new JsonRpcProvider(config.rpcUrl, Network.from(chainId), {
    staticNetwork: true,
    batchMaxCount: 1,
    cacheTimeout: -1,
    pollingInterval: config.receiptPollIntervalMs ?? 50,
  });
  const book = new AccountBook({
    path: config.dbPath,
    marketAddress: config.marketAddress,
    chainId,
    synchronous: config.synchronous,
  });
  const dso = new Dso({
    endpoint: config.endpoint,
    registry,
    book,
    provider,
    wallet: new Wallet(config.dsoPrivateKey, provider),
    marketAddress: config.marketAddress,
    chainId,
    signingKey: signingKeyFromHex(config.signingKeyHex),
    clock,
    ...(config.maxClockSkewMs !== undefined ? { maxClockSkewMs: config.maxClockSkewMs } : {}),
    ...(config.maxBatchRequests !== undefined ? { maxBatchRequests: config.maxBatchRequests } : {}),
    ...(config.maxBatchAssets !== undefined ? { maxBatchAssets: config.maxBatchAssets } : {}),
    ...(config.gasFundingWei !== undefined ? { gasFundingWei: BigInt(config.gasFundingWei) } : {}),
    ...(config.logPollIntervalMs !== undefined ? { logPollIntervalMs: config.logPollIntervalMs } : {}),
    ...(config.receiptPollIntervalMs !== undefined ? { receiptPollIntervalMs: config.receiptPollIntervalMs } : {}),
    ...(config.retryDelayMs !== undefined ? { retryDelayMs: config.retryDelayMs } : {}),
    ...(config.fromBlock !== undefined ? { fromBlock: config.fromBlock } : {}),
    ...(onError ? { onError } : {}),
  });
  let endpoint: string;
  let desk: AllowanceDesk | undefined;
  let deskEndpoint: string | undefined;
  try {
    endpoint = await dso.start();
    if (config.allowanceDesk) {
      const d = config.allowanceDesk;
      desk = new AllowanceDesk({
        endpoint: d.endpoint,
        registry,
        book,
        signer: new Wallet(config.dsoPrivateKey, provider),
        vaults: d.vaults,
        pools: d.pools,
        signingKey: signingKeyFromHex(config.signingKeyHex),
        clock,
        ...(d.maxWindowIntervals !== undefined ? { maxWindowIntervals: d.maxWindowIntervals } : {}),
        ...(config.maxClockSkewMs !== undefined ? { maxClockSkewMs: config.maxClockSkewMs } : {}),
        ...(config.retryDelayMs !== undefined ? { retryDelayMs: config.retryDelayMs } : {}),
        ...(onError ? { onError } : {}),
      });
      deskEndpoint = await desk.start();
    }
  } catch (e) {
    await dso.stop();
    book.close();
    provider.destroy();
    throw e;
  }
  return {
    dso,
    endpoint,
    ...(desk ? { desk, deskEndpoint } : {}),
    stop: async () => {
      await desk?.stop();
      await dso.stop();
      book.close();
      provider.destroy();
    },
  };
}

function line(event: Record<string, unknown>, stream: NodeJS.WriteStream = process.stdout): void {
  stream.write(`${JSON.stringify(event)}\n`);
}

async function main(argv: string[]): Promise<number> {
  // Every checksummed address and transaction hash ethers computes; natively a fifth of the cost, same digests.
  useFastKeccakInEthers();
  const i = argv.indexOf("--config");
  const configPath = i >= 0 ? argv[i + 1] : undefined;
  if (configPath === undefined) {
    line({ event: "error", code: "INVALID_ARGUMENT", message: "usage: dso-process.ts --config FILE" }, process.stderr);
    return 2;
  }
  let loaded: ReturnType<typeof loadDsoProcessConfig>;
  try {
    loaded = loadDsoProcessConfig(configPath);
  } catch (e) {
    line(
      { event: "error", code: (e as PetraError).code ?? "INVALID_ARGUMENT", message: (e as Error).message },
      process.stderr,
    );
    return 2;
  }
  const onError = (e: unknown) =>
    line(
      { event: "error", code: (e as PetraError).code ?? "RUNTIME", message: (e as Error)?.message ?? String(e) },
      process.stderr,
    );
  let running: RunningDso;
  try {
    running = await startDsoFromConfig(loaded.config, loaded.registry, onError);
  } catch (e) {
    onError(e);
    return 1;
  }
  line({
    event: "ready",
    pid: process.pid,
    endpoint: running.endpoint,
    dsoAddress: new Wallet(loaded.config.dsoPrivateKey).address,
    dsoPublicKeyHex: publicKeyHex(signingKeyFromHex(loaded.config.signingKeyHex)),
    ...(running.deskEndpoint ? { deskEndpoint: running.deskEndpoint } : {}),
  });
  await new Promise<void>((resolveStop) => {
    process.once("SIGTERM", () => resolveStop());
    process.once("SIGINT", () => resolveStop());
  });
  await running.stop();
  line({ event: "stopped", pid: process.pid });
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
