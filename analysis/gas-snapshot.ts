import * as fs from "node:fs";
import * as path from "node:path";
import type { Signer } from "ethers";
import { deployEnergyMarket } from "../agents/deploy-market";
import { ZK } from "../common/zk-params";
import { deployZk } from "../mixer/deploy";
import type { EnergyMarket, Mixer } from "../typechain-types";

/** gas used per named operation; keys are stable so that diffs of the committed snapshot read well. */
export type GasSnapshot = Record<string, number>;

export const GAS_SNAPSHOT_FILE = path.join(__dirname, "..", "gas-snapshot.json");

interface Env {
  market: EnergyMarket;
  dso: Signer;
  alice: Signer;
  bob: Signer;
  a: string;
  b: string;
}

type Case = (env: Env) => Promise<{ wait(): Promise<{ gasUsed: bigint } | null> }>;

/** Mints alice's production and bob's consumption (plus bob's money), then returns the case's own transaction. */
function trade(
  aliceW: number,
  aStart: number,
  aEnd: number,
  bobW: number,
  bStart: number,
  bEnd: number,
  bid = false,
): Case {
  return async ({ market, alice, bob, a, b }) => {
    await market.addEnergyAsset(a, aliceW, aStart, aEnd);
    await market.addEnergyAsset(b, bobW, bStart, bEnd);
    await market.addFinancialBalance(b, 10_000_000);
    if (bid) {
      await market.connect(bob).postOffer(1, 2);
      return market.connect(alice).acceptOffer(0, 0);
    }
    await market.connect(alice).postOffer(0, 2);
    return market.connect(bob).acceptOffer(0, 1);
  };
}

const batch = (n: number) => (a: string) =>
  Array.from({ length: n }, (_, i) => ({ anonAddress: a, powerW: 100 + i, start: i, end: i + 3 }));

/**
 * Each case runs on a fresh market (after the setup its function performs), so storage is cold in the
 * same way every time and the numbers are comparable across commits.
 */
const CASES: Record<string, Case> = {
  setMinter: ({ market, a }) => market.setMinter(a, true),
  "addEnergyAsset (first asset)": ({ market, a }) => market.addEnergyAsset(a, 5000, 57, 70),
  addEnergyAsset: async ({ market, a }) => {
    await market.addEnergyAsset(a, 1, 0, 0);
    return market.addEnergyAsset(a, 5000, 57, 70);
  },
  "addEnergyAssets x1": async ({ market, a }) => {
    await market.addEnergyAsset(a, 1, 0, 0);
    return market.addEnergyAssets(batch(1)(a));
  },
  "addEnergyAssets x10": async ({ market, a }) => {
    await market.addEnergyAsset(a, 1, 0, 0);
    return market.addEnergyAssets(batch(10)(a));
  },
  "addFinancialBalance (new address)": ({ market, a }) => market.addFinancialBalance(a, 1000),
  "addFinancialBalances x10 (new addresses)": ({ market }) =>
    market.addFinancialBalances(
      Array.from({ length: 10 }, (_, i) => `0x${(i + 1).toString(16).padStart(40, "0")}`),
      Array.from({ length: 10 }, () => 1000),
    ),
  "postOffer ask": async ({ market, alice, a }) => {
    await market.addEnergyAsset(a, 5000, 57, 70);
    return market.connect(alice).postOffer(0, 2);
  },
  "postOffer bid": async ({ market, bob, b }) => {
    await market.addEnergyAsset(b, -3000, 57, 70);
    await market.addFinancialBalance(b, 10_000_000);
    return market.connect(bob).postOffer(0, 2);
  },
  "rescindOffer ask": async ({ market, alice, a }) => {
    await market.addEnergyAsset(a, 5000, 57, 70);
    await market.connect(alice).postOffer(0, 2);
    return market.connect(alice).rescindOffer(0);
  },
  "rescindOffer bid": async ({ market, bob, b }) => {
    await market.addEnergyAsset(b, -3000, 57, 70);
    await market.addFinancialBalance(b, 10_000_000);
    await market.connect(bob).postOffer(0, 2);
    return market.connect(bob).rescindOffer(0);
  },
  "acceptOffer ask, same shape (2 parts)": trade(3000, 57, 60, -3000, 57, 60),
  "acceptOffer ask, accepter keeps leftover power (3 parts)": trade(3000, 57, 60, -5000, 57, 60),
  "acceptOffer ask, offered asset wider on both sides (4 parts)": trade(3000, 55, 62, -3000, 57, 60),
  "acceptOffer ask, partial overlap in time and power (5 parts)": trade(5000, 55, 60, -3000, 57, 62),
  "acceptOffer ask, wider on both sides with leftover (5 parts)": trade(5000, 55, 62, -3000, 57, 60),
  "acceptOffer bid, partial overlap in time and power (5 parts)": trade(5000, 55, 60, -3000, 57, 62, true),
  depositEnergyAsset: async ({ market, alice, a }) => {
    await market.addEnergyAsset(a, 5000, 57, 70);
    return market.connect(alice).depositEnergyAsset(0);
  },
  "fundGas x10 (new addresses)": async ({ market }) =>
    market.fundGas(
      Array.from({ length: 10 }, (_, i) => `0x${(0xfa00 + i).toString(16).padStart(40, "0")}`),
      10n ** 15n,
      { value: 10n ** 16n },
    ),
  "depositBatch, 3 assets and money (all)": async ({ market, alice, a }) => {
    for (let i = 0; i < 3; i++) await market.addEnergyAsset(a, 5000, 57, 70);
    await market.addFinancialBalance(a, 1000);
    return market.connect(alice).depositBatch([0, 1, 2], 1000);
  },
  "depositFinancial (part)": async ({ market, alice, a }) => {
    await market.addFinancialBalance(a, 1000);
    return market.connect(alice).depositFinancial(400);
  },
  "depositFinancial (all)": async ({ market, alice, a }) => {
    await market.addFinancialBalance(a, 1000);
    return market.connect(alice).depositFinancial(1000);
  },
  // The mixer's deposits (a withdrawal needs a Groth16 proof, whose random bytes move calldata gas;
  // test/contracts/zk/mixer.test.ts holds it to the 300k goal instead).
  "Mixer deposit (first leaf)": async ({ market, dso }) => (await mixerOf(market, dso)).deposit(1n),
  "Mixer deposit (leaf 7: 3 hashes)": async ({ market, dso }) => {
    const mixer = await mixerOf(market, dso);
    for (let i = 1n; i <= 7n; i++) await mixer.deposit(i);
    return mixer.deposit(8n);
  },
  "Mixer depositMany x10 (leaves 1-10)": async ({ market, dso }) => {
    const mixer = await mixerOf(market, dso);
    await mixer.deposit(1n);
    return mixer.depositMany(Array.from({ length: 10 }, (_, i) => BigInt(i + 2)));
  },
};

/** One mixer pool next to `market`, through the deploy path runners use. */
async function mixerOf(market: EnergyMarket, dso: Signer): Promise<Mixer> {
  const denomination = ZK.mixer.denominations[0] as bigint;
  const zk = await deployZk({ marketAddress: await market.getAddress(), dso, denominations: [denomination] });
  return (zk.mixers.get(denomination) as Mixer).connect(dso);
}

/** Measures every case on the in-process Hardhat network. */
export async function measureGasSnapshot(): Promise<GasSnapshot> {
  const hre = require("hardhat");
  const [dso, alice, bob] = (await hre.ethers.getSigners()) as Signer[];
  const [a, b] = await Promise.all([alice!.getAddress(), bob!.getAddress()]);
  const snapshot: GasSnapshot = {};
  for (const [name, run] of Object.entries(CASES)) {
    const id = await hre.network.provider.send("evm_snapshot");
    const market = await deployEnergyMarket(dso!);
    if (name === "setMinter") {
      const deployReceipt = await market.deploymentTransaction()?.wait();
      snapshot.deploy = Number(deployReceipt?.gasUsed ?? 0n);
    }
    const receipt = await (await run({ market, dso: dso!, alice: alice!, bob: bob!, a, b })).wait();
    snapshot[name] = Number(receipt?.gasUsed ?? 0n);
    await hre.network.provider.send("evm_revert", [id]);
  }
  return snapshot;
}

/** Batch minting costs a + b x n: the fixed part a and the per-asset part b, from the x1 and x10 cases. */
export function batchMintFormula(s: GasSnapshot): { fixed: number; perAsset: number } {
  const one = s["addEnergyAssets x1"] ?? 0;
  const ten = s["addEnergyAssets x10"] ?? 0;
  const perAsset = Math.round((ten - one) / 9);
  return { fixed: one - perAsset, perAsset };
}

export function readCommittedSnapshot(): GasSnapshot {
  return JSON.parse(fs.readFileSync(GAS_SNAPSHOT_FILE, "utf8")) as GasSnapshot;
}

export function writeSnapshot(s: GasSnapshot): void {
  fs.writeFileSync(GAS_SNAPSHOT_FILE, `${JSON.stringify(s, null, 2)}\n`);
}

/** The snapshot as a Markdown table, for the README. */
export function snapshotMarkdown(s: GasSnapshot): string {
  const rows = Object.entries(s).map(([k, v]) => `| ${k} | ${v.toLocaleString("en-US")} |`);
  return ["| operation | gas |", "|---|---:|", ...rows].join("\n");
}
