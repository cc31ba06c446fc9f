/**
 * One household as its own OS process: `node -r ts-node/register/transpile-only
 * agents/prosumer-process.ts CONFIG.json`. The live runner spawns one per household.
 *
 * Protocol with the runner (stdio, one JSON object per line):
 *   child -> runner (stdout): {"ready":true,"householdId":...}   once connected and set up
 *   runner -> child (stdin):  {"startAtMs":<epoch ms>}             when every agent is ready
 *   child -> runner (stdout): {"done":true,"drained":bool}         before exiting
 * The child exits by itself when its run ends, on SIGTERM, and when its stdin closes (the runner
 * is gone), so a crashed runner leaves no household behind.
 */

import * as fs from "node:fs";
import * as readline from "node:readline";
import type { Signer } from "ethers";
import { z } from "zod";
import { PetraError } from "../common/errors";
import { useFastKeccakInEthers } from "../common/fast-crypto";
import { LiveChain } from "./chain-live";
import { LiveClock } from "./clock-live";
import { DsoClient } from "./dso-client";
import { householdParts } from "./household-agent";
import type { Transport } from "./interfaces";
import { describeZodError } from "./messages";
import { planFromForecast, privateWithdrawalConfigSchema, startPrivateWithdrawer } from "./private-withdrawer";
import { type AssetWithdrawer, Prosumer, type ProsumerRecord } from "./prosumer";
import { offerChoiceSchema, raceBackoffSchema } from "./prosumer-options";
import { PaperStrategy } from "./strategy-paper";
import { DirectTransport } from "./transport-direct";
import { TorTransport, torTransportConfigSchema, torTransportFromConfig } from "./transport-tor";

export const prosumerConfigSchema = z
  .object({
    householdId: z.string().min(1),
    runSeed: z.number().int().min(0),
    rpcUrl: z.string().url(),
    chainId: z.number().int().positive(),
    marketAddress: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
    /** Block the market was deployed in. */
    fromBlock: z.number().int().min(0),
    dsoEndpoint: z.string().startsWith("tcp://"),
    dsoPublicKeyHex: z.string().regex(/^[0-9a-f]{64}$/),
    /** The household's long-term Ed25519 secret, hex. */
    longTermSecretHex: z.string().regex(/^[0-9a-f]{64}$/),
    /** Loopback address all of this household's traffic leaves from (direct transport). */
    sourceAddress: z.string().regex(/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/),
    /**
     * How the household's traffic leaves: "direct" (default) from sourceAddress, or "tor" through a
     * Tor client's SOCKS port, one circuit per pseudonym (agents/transport-tor.ts).
     */
    transport: z
      .discriminatedUnion("kind", [z.object({ kind: z.literal("direct") }).strict(), torTransportConfigSchema])
      .default({ kind: "direct" }),
    rotation: z.union([
      z.object({ kind: z.literal("single") }),
      z.object({ kind: z.literal("pool"), poolSize: z.number().int().positive() }),
      z.object({ kind: z.literal("per-interval") }),
      z.object({ kind: z.literal("per-offer") }),
    ]),
    gasFunding: z.enum(["dso", "household-main"]),
    offerChoice: offerChoiceSchema,
    raceBackoff: raceBackoffSchema,
    gasPerAddressWei: z.string().regex(/^\d+$/),
    trueNetW: z.record(z.string(), z.number()),
    forecastErrorRelativeSd: z.number().min(0),
    pvCapacityW: z.number().min(0),
    connectionLimitW: z.number().min(0),
    basePriceMicroPerWInterval: z.number().int().positive(),
    schedule: z.object({
      firstInterval: z.number().int().min(0),
      intervalCount: z.number().int().positive(),
      intervalMs: z.number().positive(),
      leadIntervals: z.number().int().min(1),
    }),
    /** JSON lines of ProsumerRecord, appended. */
    recordFile: z.string().min(1),
    pollIntervalMs: z.number().positive().default(100),
    /**
     * Wait per attempt for the DSO's answer, ms; four attempts. The DSO answers once its mint is
     * mined, so this must cover a few block times (with PoW-like blocks, their tail).
     */
    dsoTimeoutMs: z.number().positive().default(15_000),
    /**
     * "dso" (default): assets are minted by the DSO to the pseudonym. "zk": energy through
     * allowance proofs and money through the mixer, both via the relayer (agents/private-withdrawer.ts);
     * needs `zk`.
     */
    withdrawal: z.enum(["dso", "zk"]).default("dso"),
    zk: privateWithdrawalConfigSchema.optional(),
  })
  .strict();

export type ProsumerConfig = z.input<typeof prosumerConfigSchema>;

/** The DSO client as the prosumer's AssetWithdrawer. */
export function withdrawerFor(client: DsoClient): AssetWithdrawer {
  return {
    withdraw: async (req) => {
      const r = await client.withdraw(req);
      return r.status === "accepted"
        ? { ok: true, assetIds: r.assetIds.map(String), gasFundedWei: r.gasFundedWei }
        : { ok: false, reason: r.reason, message: r.message };
    },
  };
}

async function main(configPath: string): Promise<number> {
  // Every checksummed address and transaction hash ethers computes; natively a fifth of the cost, same digests.
  useFastKeccakInEthers();
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(configPath, "utf8"));
  } catch (e) {
    throw new PetraError("INVALID_ARGUMENT", `config: cannot read ${configPath}: ${(e as Error).message}`);
  }
  const parsed = prosumerConfigSchema.safeParse(raw);
  if (!parsed.success)
    throw new PetraError("INVALID_ARGUMENT", `config ${configPath}: ${describeZodError(parsed.error)}`);
  const c = parsed.data;
  const log = (line: string) => process.stderr.write(`[${c.householdId}] ${line}\n`);

  const clock = new LiveClock();
  const transport: Transport =
    c.transport.kind === "tor"
      ? torTransportFromConfig(c.transport, `tor for ${c.householdId}`, c.chainId)
      : new DirectTransport({ sourceAddressByIdentity: { [c.householdId]: c.sourceAddress } });
  const chain = await LiveChain.connect({
    rpcUrl: c.rpcUrl,
    marketAddress: c.marketAddress,
    transport,
    identity: c.householdId,
    clock,
    chainId: c.chainId,
    pollIntervalMs: c.pollIntervalMs,
  });
  const { rng, wallet, forecast, gas } = householdParts({
    runSeed: c.runSeed,
    householdId: c.householdId,
    rotation: c.rotation,
    trueNetW: new Map(Object.entries(c.trueNetW).map(([k, w]) => [Number(k), w])),
    forecastErrorRelativeSd: c.forecastErrorRelativeSd,
    pvCapacityW: c.pvCapacityW,
    connectionLimitW: c.connectionLimitW,
    gasFunding: c.gasFunding,
    gasPerAddressWei: c.gasPerAddressWei,
    chain,
  });
  const client = new DsoClient({
    endpoint: c.dsoEndpoint,
    householdId: c.householdId,
    key: c.longTermSecretHex,
    clock,
    transport,
    dsoPublicKeyHex: c.dsoPublicKeyHex,
    timeoutMs: c.dsoTimeoutMs,
    attempts: 4,
    onError: (e) => log(`DSO answer dropped: ${String(e)}`),
  });
  const records = fs.openSync(c.recordFile, "a");
  const record = (r: ProsumerRecord) => fs.writeSync(records, `${JSON.stringify(r)}\n`);

  const out = (obj: unknown) => process.stdout.write(`${JSON.stringify(obj)}\n`);
  const lines = readline.createInterface({ input: process.stdin });
  const startAtMs = new Promise<number>((resolve, reject) => {
    lines.on("line", (line) => {
      try {
        const msg = JSON.parse(line) as { startAtMs?: unknown };
        if (typeof msg.startAtMs === "number") resolve(msg.startAtMs);
      } catch {
        log(`ignored a line on stdin that is not JSON: ${line.slice(0, 80)}`);
      }
    });
    lines.on("close", () => reject(new PetraError("PROCESS_FAILED", "stdin closed: the runner is gone")));
  });
  // The runner gone mid-run: stop at once rather than trade unobserved.
  process.stdin.on("end", () => process.exit(3));
  process.on("SIGTERM", () => process.exit(143));

  // zk withdrawals: the allowances and notes come from the DSO's desk before trading starts.
  if (c.withdrawal === "zk" && !c.zk)
    throw new PetraError("INVALID_ARGUMENT", 'config.zk: required with withdrawal "zk"');
  const zk =
    c.withdrawal === "zk" && c.zk
      ? await startPrivateWithdrawer({
          config: c.zk,
          householdId: c.householdId,
          chainId: BigInt(c.chainId),
          clock,
          provider: chain.provider,
          transport,
          dsoPublicKeyHex: c.dsoPublicKeyHex,
          longTermSecretHex: c.longTermSecretHex,
          plan: planFromForecast({
            intervals: Array.from({ length: c.schedule.intervalCount }, (_x, i) => c.schedule.firstInterval + i),
            netW: (k) => forecast.netW(k),
            pvCapacityW: c.pvCapacityW,
            connectionLimitW: c.connectionLimitW,
            pricePerWInterval: c.basePriceMicroPerWInterval,
            gasDrop: c.gasFunding === "dso",
          }),
          log,
        })
      : undefined;

  out({ ready: true, householdId: c.householdId });
  const prosumer = new Prosumer({
    householdId: c.householdId,
    clock,
    chain,
    dso: zk?.withdrawer ?? withdrawerFor(client),
    wallet,
    forecast,
    strategy: new PaperStrategy({
      basePriceMicroPerWInterval: BigInt(c.basePriceMicroPerWInterval),
      offerChoice: c.offerChoice,
      rng: rng.fork("strategy"),
    }),
    gas,
    schedule: { ...c.schedule, startAtMs: await startAtMs },
    basePriceMicroPerWInterval: BigInt(c.basePriceMicroPerWInterval),
    fromBlock: c.fromBlock,
    raceBackoff: { maxExponent: c.raceBackoff, rng: rng.fork("race-backoff") },
    record,
    log,
    ...(zk ? { moneyBack: (pseudonym: Signer) => zk.withdrawer.depositBack(pseudonym) } : {}),
  });
  const { drained } = await prosumer.run();
  // zk: the notes the household holds (deposit-backs and unused withdrawal notes) go back into its
  // account at the desk, under its own name.
  if (zk) {
    const r = await zk.withdrawer.redeemNotes().catch((e: unknown) => {
      log(`note redemption failed: ${String(e)}`);
      return undefined;
    });
    if (r) out({ redeemed: r.redeemed, redeemedAmount: String(r.amount), refused: r.refused.length });
  }
  out({ done: true, drained, mainAddress: wallet.main().address });
  client.close();
  await zk?.close();
  chain.destroy();
  if (transport instanceof TorTransport && c.transport.kind === "tor" && c.transport.statsFile)
    fs.writeFileSync(c.transport.statsFile, `${JSON.stringify(transport.stats(), null, 2)}\n`);
  await transport.close();
  fs.closeSync(records);
  return 0;
}

if (require.main === module) {
  const configPath = process.argv[2];
  if (!configPath) {
    process.stderr.write("usage: prosumer-process.ts CONFIG.json\n");
    process.exit(2);
  }
  main(configPath).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`prosumer-process: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
