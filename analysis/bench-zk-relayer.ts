/**
 * The relayer path and the agent-level cost of zk withdrawals, for analysis/bench-zk.ts
 * (bench/zk.json, fields `relayer` and `agents`). All on the in-process Hardhat chain, with real
 * proofs, the real relayer over HTTP on loopback, the real DSO, desk and clients over ZeroMQ.
 *
 * relayer: end-to-end latency of a relayed mixer withdrawal as a household sees it (tree sync,
 *   proof, HTTP round trip that verifies, submits and waits for the receipt), median of RUNS; the
 *   relay round trip alone; the gas the relayer pays and the fee it takes. The same for an
 *   allowance withdrawal with the mixer withdrawal that pays for it, and for a gas drop.
 * agents: one prosumer withdrawal (an energy asset plus money, gas for a fresh address) done by
 *   the DSO minting directly (agents/dso.ts, PETra) against the same withdrawal done privately
 *   (agents/private-withdrawer.ts): wall time and gas per withdrawal, and the zk setup per
 *   household (allowance issue and note deposits).
 */

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { getAddress, id, type Provider, Wallet } from "ethers";
import { AccountBook } from "../agents/account-book";
import { AllowanceDeskClient } from "../agents/allowance-desk-client";
import { LiveClock } from "../agents/clock-live";
import { deployEnergyMarket } from "../agents/deploy-market";
import { devKey } from "../agents/dev-accounts";
import { Dso } from "../agents/dso";
import { AllowanceDesk } from "../agents/dso-allowance-desk";
import { DsoClient } from "../agents/dso-client";
import { generateSigningKey, publicKeyHex } from "../agents/envelope";
import { HouseholdRegistry } from "../agents/household-registry";
import { PrivateStore } from "../agents/private-store";
import { PrivateWithdrawer } from "../agents/private-withdrawer";
import { type Allowance, allowanceCommitment, freshSecret, splitAllowance } from "../mixer/allowance";
import { deployZk } from "../mixer/deploy";
import { createNote, type MixerNote, noteCommitment } from "../mixer/note";
import { buildPoseidon } from "../mixer/poseidon";
import { Prover } from "../mixer/prover";
import { Relayer } from "../mixer/relayer";
import { proveAllowanceWithdrawal, proveMixerWithdrawal, RelayerClient } from "../mixer/relayer-client";
import type { RelayResult } from "../mixer/relayer-protocol";
import { syncAllowanceTree, syncMixerTree } from "../mixer/tree-sync";

const hre = require("hardhat");

const RUNS = Number(process.env.BENCH_ZK_RELAY_RUNS ?? 7);
const AGENT_RUNS = Number(process.env.BENCH_ZK_AGENT_RUNS ?? 5);
const FEES = { mixer: 10n, allowance: 10n, gasDrop: 10n };
const GAS_DROP_WEI = 10n ** 16n;
const fresh = (label: string) => new Wallet(id(`bench-zk-relayer/${label}`));

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const ms = (t0: number) => Math.round((performance.now() - t0) * 10) / 10;
const gasOf = (r: RelayResult, kind?: string) =>
  r.transactions.filter((t) => !kind || t.kind === kind).reduce((s, t) => s + Number(t.gasUsed), 0);

/** Gas of every transaction `from` sent in blocks (from, latest]. */
async function gasSentBy(provider: Provider, from: readonly string[], afterBlock: number): Promise<number> {
  const senders = new Set(from.map((a) => getAddress(a)));
  let gas = 0;
  const latest = await provider.getBlockNumber();
  for (let b = afterBlock + 1; b <= latest; b++) {
    const block = await provider.getBlock(b, true);
    for (const tx of block?.prefetchedTransactions ?? []) {
      if (!senders.has(getAddress(tx.from))) continue;
      gas += Number((await provider.getTransactionReceipt(tx.hash))?.gasUsed ?? 0n);
    }
  }
  return gas;
}

async function relayerPath(prover: Prover): Promise<Record<string, unknown>> {
  const provider = hre.ethers.provider;
  const [dso] = await hre.ethers.getSigners();
  const poseidon = await buildPoseidon();
  const market = await deployEnergyMarket(dso);
  const zk = await deployZk({ marketAddress: await market.getAddress(), dso, denominations: [1000n] });
  const mixer = zk.mixers.get(1000n);
  if (!mixer) throw new Error("no pool");
  const pool = await mixer.getAddress();
  const vault = await zk.vault.getAddress();
  let seed = 11;
  const rnd = (n: number) => Uint8Array.from({ length: n }, () => seed++ & 0xff);
  const notes: MixerNote[] = Array.from({ length: 2 * RUNS + 1 }, () =>
    createNote({ chainId: 31337n, denomination: 1000n, randomBytes: rnd }),
  );
  for (const n of notes) await (await mixer.connect(dso).deposit(noteCommitment(poseidon, n))).wait();
  const allowances: Allowance[] = Array.from({ length: RUNS }, () => ({
    capW: 5000n,
    windowStart: 0n,
    windowEnd: 95n,
    secret: freshSecret(rnd),
    nullifier: freshSecret(rnd),
  }));
  for (const a of allowances) await (await zk.vault.connect(dso).issue(allowanceCommitment(poseidon, a))).wait();

  const relayer = new Relayer({
    provider,
    privateKey: devKey(14),
    pools: [pool],
    vaults: [vault],
    fees: FEES,
    gasDropWei: GAS_DROP_WEI,
    prover,
  });
  const client = new RelayerClient({ url: await relayer.start() });
  const status = await client.status();
  try {
    // Mixer withdrawals: what a household waits for, from reading the tree to the mined payout.
    const mixerRuns: { endToEndMs: number; treeMs: number; proveMs: number; relayMs: number; gas: number }[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const tree = await syncMixerTree(mixer);
      const treeMs = ms(t0);
      const t1 = performance.now();
      const wire = await proveMixerWithdrawal({
        prover,
        poseidon,
        tree,
        note: notes[i] as MixerNote,
        pool,
        recipient: fresh(`m${i}`).address,
        relayer: status.relayer,
        fee: FEES.mixer,
      });
      const proveMs = ms(t1);
      const t2 = performance.now();
      const r = await client.relay({ mixer: wire });
      const relayMs = ms(t2);
      if (!r.ok) throw new Error(`relay refused: ${r.code} ${r.message}`);
      mixerRuns.push({ endToEndMs: ms(t0), treeMs, proveMs, relayMs, gas: gasOf(r) });
    }
    // Allowance withdrawals with the mixer withdrawal that pays for them, and a gas drop on the first.
    const allowanceRuns: {
      endToEndMs: number;
      proveMs: number;
      relayMs: number;
      allowanceGas: number;
      mixerGas: number;
      gasDropGas: number;
    }[] = [];
    for (let i = 0; i < RUNS; i++) {
      const recipient = fresh(`a${i}`).address;
      const t0 = performance.now();
      const [aTree, mTree] = [await syncAllowanceTree(zk.vault), await syncMixerTree(mixer)];
      const t1 = performance.now();
      const request = { powerW: 1200n, start: 40n, end: 40n };
      const a = allowances[i] as Allowance;
      const spend = await proveAllowanceWithdrawal({
        prover,
        poseidon,
        tree: aTree,
        allowance: a,
        parts: splitAllowance(a, request, rnd),
        vault,
        request,
        recipient,
      });
      const gasDrop = i === 0;
      const pay = await proveMixerWithdrawal({
        prover,
        poseidon,
        tree: mTree,
        note: notes[RUNS + i] as MixerNote,
        pool,
        recipient,
        relayer: status.relayer,
        fee: FEES.mixer + FEES.allowance + (gasDrop ? FEES.gasDrop : 0n),
      });
      const proveMs = ms(t1);
      const t2 = performance.now();
      const r = await client.relay({ mixer: pay, allowance: spend, gasDrop });
      const relayMs = ms(t2);
      if (!r.ok) throw new Error(`relay refused: ${r.code} ${r.message}`);
      allowanceRuns.push({
        endToEndMs: ms(t0),
        proveMs,
        relayMs,
        allowanceGas: gasOf(r, "allowance"),
        mixerGas: gasOf(r, "mixer"),
        gasDropGas: gasOf(r, "gas-drop"),
      });
    }
    const pick = <T>(rows: T[], f: (r: T) => number) => median(rows.map(f));
    return {
      runs: RUNS,
      fees: {
        mixer: Number(FEES.mixer),
        allowance: Number(FEES.allowance),
        gasDrop: Number(FEES.gasDrop),
        unit: "money units",
      },
      gasDropWei: GAS_DROP_WEI.toString(),
      mixerWithdrawal: {
        endToEndMedianMs: pick(mixerRuns, (r) => r.endToEndMs),
        proveMedianMs: pick(mixerRuns, (r) => r.proveMs),
        relayRoundTripMedianMs: pick(mixerRuns, (r) => r.relayMs),
        treeSyncMedianMs: pick(mixerRuns, (r) => r.treeMs),
        relayerGasMedian: pick(mixerRuns, (r) => r.gas),
        feeMoneyUnits: Number(FEES.mixer),
        samples: mixerRuns,
      },
      allowanceWithPayment: {
        endToEndMedianMs: pick(allowanceRuns, (r) => r.endToEndMs),
        proveTwoMedianMs: pick(allowanceRuns, (r) => r.proveMs),
        relayRoundTripMedianMs: pick(allowanceRuns, (r) => r.relayMs),
        relayerGasMedian: pick(allowanceRuns, (r) => r.allowanceGas + r.mixerGas),
        allowanceWithdrawGasMedian: pick(allowanceRuns, (r) => r.allowanceGas),
        gasDropGas: allowanceRuns[0]?.gasDropGas,
        feeMoneyUnits: Number(FEES.mixer + FEES.allowance),
        samples: allowanceRuns,
      },
      relayerStats: {
        relayed: relayer.stats.relayed,
        gasPaidWei: relayer.stats.gasPaidWei.toString(),
        feesEarned: relayer.stats.feesEarned.toString(),
      },
    };
  } finally {
    await relayer.stop();
  }
}

async function agentLevel(prover: Prover): Promise<Record<string, unknown>> {
  const provider = hre.ethers.provider;
  const clock = new LiveClock();
  const [dsoSigner] = await hre.ethers.getSigners();
  const market = await deployEnergyMarket(dsoSigner);
  const marketAddress = await market.getAddress();
  const fromBlock = await provider.getBlockNumber();
  const zk = await deployZk({ marketAddress, dso: dsoSigner, denominations: [1000n, 10000n] });
  const pools = new Map<bigint, string>();
  for (const [d, m] of zk.mixers) pools.set(d, await m.getAddress());
  const vault = await zk.vault.getAddress();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petra-bench-zk-"));
  const keys = { direct: generateSigningKey(), private: generateSigningKey() };
  const registry = new HouseholdRegistry({
    feeders: [{ id: "f1", ratingW: 1_000_000 }],
    households: Object.entries(keys).map(([hid, k]) => ({
      id: hid,
      publicKeyHex: publicKeyHex(k),
      feederId: "f1",
      pvCapacityW: 10_000,
      connectionLimitW: 10_000,
      initialBalance: 10_000_000,
    })),
  });
  const book = new AccountBook({
    path: path.join(dir, "dso.sqlite"),
    marketAddress,
    chainId: 31337,
    synchronous: "NORMAL",
  });
  const dsoKey = generateSigningKey();
  const dsoWallet = new Wallet(devKey(0), provider);
  const desk = new AllowanceDesk({
    endpoint: "tcp://127.0.0.1:*",
    registry,
    book,
    signer: dsoWallet,
    vaults: { consumption: vault },
    pools: [...pools.values()],
    signingKey: dsoKey,
    clock,
    receiptPollMs: 5,
  });
  const relayer = new Relayer({
    provider,
    privateKey: devKey(15),
    pools: [...pools.values()],
    vaults: [vault],
    fees: FEES,
    gasDropWei: GAS_DROP_WEI,
    prover,
  });
  const deskClient = new AllowanceDeskClient({
    endpoint: await desk.start(),
    householdId: "private",
    key: keys.private,
    clock,
    dsoPublicKeyHex: publicKeyHex(dsoKey),
  });
  const relayerUrl = await relayer.start();
  let dso: Dso | undefined;
  let dsoClient: DsoClient | undefined;
  try {
    const asset = { powerW: -6000, financial: 6000 };
    // zk setup, once per household and run: an allowance for the window and the notes it will spend.
    const withdrawer = new PrivateWithdrawer({
      householdId: "private",
      clock,
      provider,
      desk: deskClient,
      relayer: new RelayerClient({ url: relayerUrl }),
      prover,
      store: PrivateStore.open(path.join(dir, "private.json"), "private"),
      chainId: 31337n,
      vaults: { consumption: vault },
      pools,
      fromBlock,
    });
    const setupBlock = await provider.getBlockNumber();
    let t = performance.now();
    await withdrawer.prepare({
      windowStart: 0,
      windowEnd: AGENT_RUNS - 1,
      capsW: { consumption: 10_000 },
      withdrawals: Array.from({ length: AGENT_RUNS }, () => ({ financial: asset.financial, assets: 1, gasDrop: true })),
    });
    const setupMs = ms(t);
    const setupGas = await gasSentBy(provider, [dsoWallet.address], setupBlock);

    // Direct DSO mints (PETra): the DSO mints the asset and the money and funds the address's gas.
    dso = new Dso({
      endpoint: "tcp://127.0.0.1:*",
      registry,
      book,
      provider,
      wallet: dsoWallet,
      marketAddress,
      chainId: 31337,
      signingKey: dsoKey,
      clock,
      gasFundingWei: GAS_DROP_WEI,
      receiptPollIntervalMs: 5,
      fromBlock,
    });
    dsoClient = new DsoClient({
      endpoint: await dso.start(),
      householdId: "direct",
      key: keys.direct,
      clock,
      dsoPublicKeyHex: publicKeyHex(dsoKey),
    });
    const direct: { ms: number; gas: number }[] = [];
    for (let k = 0; k < AGENT_RUNS; k++) {
      const before = await provider.getBlockNumber();
      t = performance.now();
      const r = await dsoClient.withdraw({
        requestId: `direct:${k}`,
        anonAddress: fresh(`direct-${k}`).address,
        assets: [{ powerW: asset.powerW, start: k, end: k }],
        financial: asset.financial,
        fundGas: true,
      });
      const wall = ms(t);
      if (r.status !== "accepted") throw new Error(`DSO refused: ${r.reason} ${r.message}`);
      direct.push({ ms: wall, gas: await gasSentBy(provider, [dsoWallet.address], before) });
    }

    const private_: { ms: number; gas: number; proofs: number; proveMs: number; relayMs: number }[] = [];
    for (let k = 0; k < AGENT_RUNS; k++) {
      const before = await provider.getBlockNumber();
      t = performance.now();
      const r = await withdrawer.withdraw({
        requestId: `private:${k}`,
        anonAddress: fresh(`private-${k}`).address,
        assets: [{ powerW: asset.powerW, start: k, end: k }],
        financial: asset.financial,
        fundGas: true,
      });
      const wall = ms(t);
      if (!r.ok) throw new Error(`private withdrawal failed: ${r.reason} ${r.message}`);
      const timing = withdrawer.timings[withdrawer.timings.length - 1];
      private_.push({
        ms: wall,
        gas: await gasSentBy(provider, [relayer.address], before),
        proofs: timing?.proofs ?? 0,
        proveMs: timing?.proofsMs ?? 0,
        relayMs: timing?.relayMs ?? 0,
      });
    }
    const directMs = median(direct.map((d) => d.ms));
    const privateMs = median(private_.map((d) => d.ms));
    const directGas = median(direct.map((d) => d.gas));
    const privateGas = median(private_.map((d) => d.gas));
    return {
      runs: AGENT_RUNS,
      withdrawal: {
        ...asset,
        gasForFreshAddress: true,
        note: "one consumption asset of 6 kW for one interval plus 6,000 money units",
      },
      directDsoMint: {
        wallMedianMs: directMs,
        gasMedian: directGas,
        paidBy: "DSO (addEnergyAssets + addFinancialBalances + gas transfer, batched per request)",
        samples: direct,
      },
      zkViaRelayer: {
        wallMedianMs: privateMs,
        gasMedian: privateGas,
        paidBy: "relayer (allowance withdraw + mixer withdraw + gas drop), refunded by the fee",
        feeMoneyUnits: Number(FEES.mixer + FEES.allowance + FEES.gasDrop),
        samples: private_,
      },
      zkSetupPerHousehold: {
        wallMs: setupMs,
        gas: setupGas,
        paidBy: "DSO (one allowance issue + one depositMany per note request)",
        notes: Object.values(withdrawer.holdings().notes).reduce((a, b) => a + b, 0) + AGENT_RUNS,
        // The desk's own count of the depositMany transactions it paid for (agents/dso-allowance-desk.ts).
        deskNoteDeposits: {
          ...desk.stats.noteDeposits,
          gasPerNote: Math.round(desk.stats.noteDeposits.gasUsed / Math.max(1, desk.stats.noteDeposits.notes)),
        },
      },
      ratio: { wall: privateMs / directMs, gas: privateGas / directGas },
    };
  } finally {
    dsoClient?.close();
    deskClient.close();
    await relayer.stop();
    await desk.stop();
    await dso?.stop();
    book.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The `relayer` and `agents` fields of bench/zk.json. */
export async function benchZkRelayer(): Promise<{ relayer: Record<string, unknown>; agents: Record<string, unknown> }> {
  const prover = new Prover();
  const load = () => Math.round((os.loadavg()[0] ?? 0) * 100) / 100;
  try {
    await prover.warm("mixer-withdraw");
    await prover.warm("allowance-withdraw");
    const loadBefore = load();
    const relayer = await relayerPath(prover);
    const agents = await agentLevel(prover);
    // Two shared cores: with a load average above 2, every time here is an upper bound.
    const machine = { cpus: os.cpus().length, loadAverage1m: { before: loadBefore, after: load() } };
    return { relayer: { machine, ...relayer }, agents: { machine, ...agents } };
  } finally {
    await prover.close();
  }
}
