import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { ed25519 } from "@noble/curves/ed25519";
import { bytesToHex } from "@noble/hashes/utils";
import { getAddress, Wallet } from "ethers";
import { AccountBook } from "../agents/account-book";
import { LiveClock } from "../agents/clock-live";
import { deployEnergyMarket } from "../agents/deploy-market";
import { Dso } from "../agents/dso";
import { DsoClient } from "../agents/dso-client";
import { openEnvelope, publicKeyHex, type SigningKey, sealEnvelope } from "../agents/envelope";
import { HouseholdRegistry } from "../agents/household-registry";
import { createRng } from "../common/rng";

/**
 * How many withdrawals per second the DSO validates and mints, end to end: real ZeroMQ on
 * 127.0.0.1, real envelopes, the SQLite book, batched mints on the in-process Hardhat chain
 * (automine). Also the envelope check alone (sign + open), to separate CPU from chain cost.
 *
 *   npx hardhat run --no-compile analysis/bench-dso.ts
 *   PETRA_BENCH_REQUESTS=2000 PETRA_BENCH_HOUSEHOLDS=20 PETRA_BENCH_OUT=results.json npx hardhat run ...
 */

const hre = require("hardhat");

const REQUESTS = Number(process.env.PETRA_BENCH_REQUESTS ?? 600);
const HOUSEHOLDS = Number(process.env.PETRA_BENCH_HOUSEHOLDS ?? 10);
const SEED = Number(process.env.PETRA_BENCH_SEED ?? 20261125);
const SYNC = (process.env.PETRA_BENCH_SYNC ?? "FULL") as "FULL" | "NORMAL";

function keyFrom(label: string): SigningKey {
  const rng = createRng(SEED).fork(label);
  const secretKey = new Uint8Array(32);
  for (let i = 0; i < 32; i++) secretKey[i] = rng.int(0, 255);
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

async function envelopeRate(): Promise<number> {
  const key = keyFrom("bench-envelope");
  const keyHex = publicKeyHex(key);
  const n = 2_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const bytes = sealEnvelope({
      from: "h",
      key,
      timestampMs: 1,
      message: {
        type: "withdrawAssets",
        requestId: `r${i}`,
        anonAddress: "0x00000000000000000000000000000000000000a1",
        assets: [{ powerW: 1, start: 1, end: 1 }],
        financial: 1,
      },
    });
    const r = openEnvelope(bytes, {
      nowMs: 1,
      maxClockSkewMs: 1,
      resolveKey: (_f, k) => (k === keyHex ? key.publicKey : undefined),
    });
    if (!r.ok) throw new Error(r.detail);
  }
  return n / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  const sealOpenPerS = await envelopeRate();
  const [dsoSigner] = await hre.ethers.getSigners();
  const market = await deployEnergyMarket(dsoSigner);
  const marketAddress = await market.getAddress();
  const chainId = Number((await hre.ethers.provider.getNetwork()).chainId);
  const keys = Array.from({ length: HOUSEHOLDS }, (_, i) => keyFrom(`h${i}`));
  const registry = new HouseholdRegistry({
    feeders: [{ id: "f", ratingW: 1e12 }],
    households: keys.map((k, i) => ({
      id: `h${i}`,
      publicKeyHex: bytesToHex(k.publicKey),
      feederId: "f",
      pvCapacityW: 1e9,
      connectionLimitW: 1e9,
      initialBalance: 1e12,
    })),
  });
  const dir = mkdtempSync(join(tmpdir(), "petra-bench-dso-"));
  const book = new AccountBook({ path: join(dir, "dso.sqlite"), marketAddress, chainId, synchronous: SYNC });
  const accounts = hre.network.config.accounts as { mnemonic: string; path: string; initialIndex: number };
  const { HDNodeWallet, Mnemonic } = require("ethers") as typeof import("ethers");
  const dsoKey = HDNodeWallet.fromMnemonic(Mnemonic.fromPhrase(accounts.mnemonic), accounts.path).deriveChild(
    accounts.initialIndex,
  ).privateKey;
  const clock = new LiveClock();
  const signingKey = keyFrom("dso");
  const dso = new Dso({
    endpoint: "tcp://127.0.0.1:*",
    registry,
    book,
    provider: hre.ethers.provider,
    wallet: new Wallet(dsoKey, hre.ethers.provider),
    marketAddress,
    chainId,
    signingKey,
    clock,
    receiptPollIntervalMs: 5,
    fromBlock: await hre.ethers.provider.getBlockNumber(),
  });
  const endpoint = await dso.start();
  const clients = keys.map(
    (k, i) =>
      new DsoClient({
        endpoint,
        householdId: `h${i}`,
        key: k,
        clock,
        dsoPublicKeyHex: publicKeyHex(signingKey),
        timeoutMs: 60_000,
        attempts: 1,
      }),
  );
  const latencies: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: REQUESTS }, async (_, i) => {
      const start = performance.now();
      const r = await (clients[i % HOUSEHOLDS] as DsoClient).withdraw({
        requestId: `bench-${i}`,
        anonAddress: getAddress(`0x${(0xc0000 + i).toString(16).padStart(40, "0")}`),
        assets: [{ powerW: 100, start: i, end: i }],
        financial: 10,
      });
      if (r.status !== "accepted") throw new Error(`${r.requestId}: ${r.reason} ${r.message}`);
      latencies.push(performance.now() - start);
    }),
  );
  const elapsedS = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const result = {
    benchmark: "dso-withdrawals",
    seed: SEED,
    chain: "hardhat in-process, automine",
    requests: REQUESTS,
    households: HOUSEHOLDS,
    sqliteSynchronous: SYNC,
    withdrawalsPerS: Math.round(REQUESTS / elapsedS),
    batches: dso.stats.batches,
    meanRequestsPerBatch: Math.round((REQUESTS / dso.stats.batches) * 10) / 10,
    latencyMs: {
      median: Math.round(quantile(latencies, 0.5)),
      p90: Math.round(quantile(latencies, 0.9)),
      max: Math.round(latencies.at(-1) as number),
    },
    envelopeSealAndOpenPerS: Math.round(sealOpenPerS),
    assetCountOnChain: Number(await market.assetCount()),
  };
  for (const c of clients) c.close();
  await dso.stop();
  book.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify(result, null, 2));
  if (process.env.PETRA_BENCH_OUT) writeFileSync(process.env.PETRA_BENCH_OUT, `${JSON.stringify(result, null, 2)}\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
