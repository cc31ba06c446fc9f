import * as fs from "node:fs";
import { z } from "zod";
import { PetraError } from "../common/errors";
import type { MarketEvent } from "./market-replay";

/**
 * The normalised dataset every attack reads: what a chain observer (and, where a log exists, a
 * network observer at the RPC node) can see. Ground truth is never part of it.
 *
 * On disk it is JSON Lines: one header line, then one record per line, so a day of 1,000
 * households (~400k events) streams in and out without one giant JSON string. Big integers are
 * written as decimal strings.
 */

export interface TxRecord {
  kind: "tx";
  hash: string;
  from: string;
  to: string | null;
  valueWei: bigint;
  /** Effective gas price paid (wei per gas). */
  gasPriceWei: bigint;
  gasUsed: bigint;
  blockNumber: number;
  timestamp: number;
  nonce: number;
  status: number;
  /** First 4 bytes of calldata: which function was called. */
  selector: string;
}

export interface EventRecord {
  kind: "event";
  contract: "market" | "mixer" | "vault";
  blockNumber: number;
  logIndex: number;
  txHash: string;
  timestamp: number;
  event: MarketEvent | MixerEvent;
}

/**
 * Mixer and allowance-vault events (contracts/zk/). `depositor` is whoever sent the deposit
 * transaction: with this lab's Mixer that is always the DSO, paying in on a household's behalf.
 */
export type MixerEvent =
  | { name: "MixerDeposit"; depositor: string; commitment: string; denomination: bigint }
  | {
      name: "MixerWithdrawal";
      recipient: string;
      relayer: string;
      nullifierHash: string;
      denomination: bigint;
      fee: bigint;
    }
  | { name: "AllowanceIssued"; commitment: string; leafIndex: bigint }
  | { name: "AllowanceSpent"; nullifierHash: string; assetID: bigint; newCommitments: string[] };

/** What a network observer at the RPC endpoint recorded about one request or connection. */
export interface ObserverRecord {
  kind: "observer";
  timeMs: number;
  /** Source address of the connection, as seen by the RPC side (e.g. 127.0.0.7, or a Tor exit). */
  source: string;
  /** The transaction the request carried, where the observer could decode one. */
  txHash?: string;
  /** Its sender, likewise. */
  txFrom?: string;
}

export interface DatasetHeader {
  kind: "header";
  version: 1;
  chainId: number;
  fromBlock: number;
  toBlock: number;
  /** The zk contracts a run used: every mixer pool (one per denomination) and every vault (one per direction). */
  contracts: { market: string; mixers?: string[]; vaults?: string[] };
  /** The DSO's address: public (the market's deployer). */
  dso: string;
}

export interface Dataset {
  header: DatasetHeader;
  transactions: TxRecord[];
  events: EventRecord[];
  observer: ObserverRecord[];
}

export function emptyDataset(header: DatasetHeader): Dataset {
  return { header, transactions: [], events: [], observer: [] };
}

// ---------------------------------------------------------------- serialisation

const toJson = (_k: string, v: unknown) => (typeof v === "bigint" ? v.toString() : v);

export function datasetLines(ds: Dataset): string[] {
  const lines = [JSON.stringify(ds.header)];
  for (const r of ds.transactions) lines.push(JSON.stringify(r, toJson));
  for (const r of ds.events) lines.push(JSON.stringify(r, toJson));
  for (const r of ds.observer) lines.push(JSON.stringify(r, toJson));
  return lines;
}

export function writeDataset(file: string, ds: Dataset): void {
  const fd = fs.openSync(file, "w");
  try {
    for (const line of datasetLines(ds)) fs.writeSync(fd, `${line}\n`);
  } finally {
    fs.closeSync(fd);
  }
}

const addr = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "an address");
const hex = z.string().regex(/^0x[0-9a-fA-F]*$/, "a hex string");
const big = z.union([z.string().regex(/^-?\d+$/), z.number().int()]).transform((v) => BigInt(v));
const uint = z.number().int().nonnegative();

const headerSchema = z.object({
  kind: z.literal("header"),
  version: z.literal(1),
  chainId: uint,
  fromBlock: uint,
  toBlock: uint,
  contracts: z
    .object({
      market: addr,
      mixers: z.array(addr).optional(),
      vaults: z.array(addr).optional(),
      // Datasets written before multi-pool reads named one mixer and one vault.
      mixer: addr.optional(),
      vault: addr.optional(),
    })
    .strict()
    .transform(({ market, mixers, vaults, mixer, vault }) => {
      const m = [...(mixers ?? []), ...(mixer ? [mixer] : [])];
      const v = [...(vaults ?? []), ...(vault ? [vault] : [])];
      return { market, ...(m.length ? { mixers: m } : {}), ...(v.length ? { vaults: v } : {}) };
    }),
  dso: addr,
});

const txSchema = z.object({
  kind: z.literal("tx"),
  hash: hex,
  from: addr,
  to: addr.nullable(),
  valueWei: big,
  gasPriceWei: big,
  gasUsed: big,
  blockNumber: uint,
  timestamp: uint,
  nonce: uint,
  status: uint,
  selector: hex,
});

const marketEventSchema = z.discriminatedUnion("name", [
  z.object({ name: z.literal("AssetAdded"), anonAddress: addr, assetID: big, powerW: big, start: big, end: big }),
  z.object({ name: z.literal("FinancialAdded"), anonAddress: addr, amount: big }),
  z.object({ name: z.literal("OfferPosted"), offerID: big, assetID: big, priceMicroPerWInterval: big }),
  z.object({ name: z.literal("OfferRescinded"), offerID: big }),
  z.object({ name: z.literal("OfferAccepted"), offerID: big, assetID: big, payment: big }),
  z.object({
    name: z.literal("AssetSplit"),
    parentID: big,
    assetID: big,
    owner: addr,
    powerW: big,
    start: big,
    end: big,
  }),
  z.object({ name: z.literal("AssetDeposited"), anonAddress: addr, assetID: big }),
  z.object({ name: z.literal("FinancialDeposited"), anonAddress: addr, amount: big }),
  z.object({ name: z.literal("MinterSet"), minter: addr, allowed: z.boolean() }),
  z.object({ name: z.literal("GasFunded"), anonAddress: addr, amountWei: big }),
  z.object({ name: z.literal("MixerDeposit"), depositor: addr, commitment: hex, denomination: big }),
  z.object({
    name: z.literal("MixerWithdrawal"),
    recipient: addr,
    relayer: addr,
    nullifierHash: hex,
    denomination: big,
    fee: big,
  }),
  z.object({ name: z.literal("AllowanceIssued"), commitment: hex, leafIndex: big }),
  z.object({ name: z.literal("AllowanceSpent"), nullifierHash: hex, assetID: big, newCommitments: z.array(hex) }),
]);

const eventSchema = z.object({
  kind: z.literal("event"),
  contract: z.enum(["market", "mixer", "vault"]),
  blockNumber: uint,
  logIndex: uint,
  txHash: hex,
  timestamp: uint,
  event: marketEventSchema,
});

const observerSchema = z.object({
  kind: z.literal("observer"),
  timeMs: z.number().nonnegative(),
  source: z.string().min(1),
  txHash: hex.optional(),
  txFrom: addr.optional(),
});

const recordSchema = z.discriminatedUnion("kind", [txSchema, eventSchema, observerSchema]);

/** Parses dataset lines; the error names the line and the field that is wrong. */
export function parseDataset(lines: Iterable<string>, source = "dataset"): Dataset {
  let ds: Dataset | undefined;
  let n = 0;
  for (const raw of lines) {
    n++;
    const line = raw.trim();
    if (line === "") continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (e) {
      throw new PetraError("LEDGER_UNREADABLE", `${source}:${n}: not JSON (${(e as Error).message})`, { line: n });
    }
    if (!ds) {
      const h = headerSchema.safeParse(json);
      if (!h.success) throw unreadable(source, n, "header", h.error);
      ds = emptyDataset(h.data);
      continue;
    }
    const r = recordSchema.safeParse(json);
    if (!r.success) throw unreadable(source, n, "record", r.error);
    const rec = r.data;
    if (rec.kind === "tx") ds.transactions.push(rec);
    else if (rec.kind === "event") ds.events.push(rec as EventRecord);
    else ds.observer.push(rec);
  }
  if (!ds) throw new PetraError("LEDGER_UNREADABLE", `${source}: empty, expected a header line`, {});
  sortDataset(ds);
  return ds;
}

function unreadable(source: string, line: number, what: string, err: z.ZodError): PetraError {
  const issue = err.issues[0];
  const field = issue?.path.join(".") || "(root)";
  return new PetraError(
    "LEDGER_UNREADABLE",
    `${source}:${line}: invalid ${what}: field "${field}": ${issue?.message}`,
    {
      line,
      field,
    },
  );
}

// The network observer's own log (agents/network-observer.ts) is read without importing agents/:
// "transaction" records name the submitted transaction, "connection" records only the source.
const observerLogSchema = z.discriminatedUnion("kind", [
  observerSchema,
  z.object({
    kind: z.literal("transaction"),
    sourceAddress: z.string().min(1),
    atMs: z.number().nonnegative(),
    txHash: hex,
    txFrom: addr,
  }),
  z.object({ kind: z.literal("connection"), sourceAddress: z.string().min(1), openedAtMs: z.number().nonnegative() }),
]);

/** Parses a network observer log: the dataset's own observer records or the observer proxy's JSONL. */
export function parseObserverLog(lines: Iterable<string>, source = "observer log"): ObserverRecord[] {
  const out: ObserverRecord[] = [];
  let n = 0;
  for (const raw of lines) {
    n++;
    if (raw.trim() === "") continue;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (e) {
      throw new PetraError("LEDGER_UNREADABLE", `${source}:${n}: not JSON (${(e as Error).message})`, { line: n });
    }
    const r = observerLogSchema.safeParse(json);
    if (!r.success) throw unreadable(source, n, "observer record", r.error);
    const rec = r.data;
    if (rec.kind === "observer") out.push(rec);
    else if (rec.kind === "transaction")
      out.push({
        kind: "observer",
        timeMs: rec.atMs,
        source: rec.sourceAddress,
        txHash: rec.txHash,
        txFrom: rec.txFrom,
      });
    else out.push({ kind: "observer", timeMs: rec.openedAtMs, source: rec.sourceAddress });
  }
  return out.sort((a, b) => a.timeMs - b.timeMs);
}

export function readDataset(file: string): Dataset {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new PetraError("LEDGER_UNREADABLE", `${file}: cannot read (${(e as Error).message})`, { file });
  }
  return parseDataset(text.split("\n"), file);
}

/** Chain order: block, then log index (transactions by block, then nonce). */
export function sortDataset(ds: Dataset): void {
  ds.transactions.sort((a, b) => a.blockNumber - b.blockNumber || a.timestamp - b.timestamp || a.nonce - b.nonce);
  ds.events.sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);
  ds.observer.sort((a, b) => a.timeMs - b.timeMs);
}

/** The market events alone, in chain order (what market-replay takes). */
export function marketEvents(ds: Dataset): MarketEvent[] {
  return ds.events.filter((e) => e.contract === "market").map((e) => e.event as MarketEvent);
}

export const lower = (a: string): string => a.toLowerCase();

/** Every contract address of the run, lower-cased: the market, each mixer pool, each vault. */
export function contractAddresses(ds: Dataset): Set<string> {
  const c = ds.header.contracts;
  return new Set([c.market, ...(c.mixers ?? []), ...(c.vaults ?? [])].map(lower));
}

/**
 * Accounts that act for everyone and so carry no household information: the DSO, and every relayer
 * (whoever relayed a mixer withdrawal or submitted an allowance spend). Linking through them would
 * chain all their clients into one cluster.
 */
export function publicHubs(ds: Dataset): Set<string> {
  const hubs = new Set([lower(ds.header.dso)]);
  const spendTxs = new Set<string>();
  for (const e of ds.events) {
    if (e.event.name === "MixerWithdrawal") hubs.add(lower(e.event.relayer));
    else if (e.event.name === "AllowanceSpent") spendTxs.add(e.txHash);
  }
  for (const tx of ds.transactions) if (spendTxs.has(tx.hash)) hubs.add(lower(tx.from));
  return hubs;
}
