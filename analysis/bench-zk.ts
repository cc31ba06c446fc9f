/**
 * Zero-knowledge measurements, side by side with Tornado Cash and Semaphore v4:
 * constraints, proving time cold and warm (median), verification and contract gas.
 * `npx hardhat run analysis/bench-zk.ts` writes bench/zk.json.
 *
 * Cold = the first proof of a fresh Prover after the curve workers were torn down (artifacts
 * read from disk, zkey parsed, circuit wasm compiled, bn128 wasm and worker threads built, and for
 * msm "native" the child process started and given the bases; its binary is already compiled),
 * the median of COLD_RUNS; warm = the median of the next WARM_RUNS proofs of the same Prover.
 * The top-level proveColdSeconds / proveWarmMedianSeconds rows are the wasm multi-exponentiations
 * (msm: "wasm", what they always measured); `native` holds the native rows. Native against wasm
 * is measured in alternation (one proof of each Prover in turn, all of them warm), with the load
 * average beside every proof: on a shared machine the ratio of one run is meaningful even where
 * the absolute times are not.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AbiCoder, type ContractTransactionResponse, keccak256, type Signer, toBeHex } from "ethers";
import { ARTIFACTS_DIR, type CircuitName } from "../circuits/instances";
import { ZK } from "../common/zk-params";
import {
  type Allowance,
  allowanceCommitment,
  allowanceNullifierHash,
  allowanceWithdrawInputs,
  freshSecret,
  splitAllowance,
} from "../mixer/allowance";
import { deployZk } from "../mixer/deploy";
import { MerkleTree } from "../mixer/merkle-tree";
import { nativeMsmBinary } from "../mixer/native-msm";
import { createNote, noteCommitment, noteNullifierHash } from "../mixer/note";
import { buildPoseidon } from "../mixer/poseidon";
import { Prover, type ProverOptions, toSolidityProof } from "../mixer/prover";
import type { CircuitInputs } from "../mixer/snarkjs";
import { terminateCurveWorkers } from "../mixer/snarkjs";
import { type Mixer, MixerWithdrawVerifierHarness__factory } from "../typechain-types";
import { benchZkRelayer } from "./bench-zk-relayer";

const hre = require("hardhat");

const WARM_RUNS = Number(process.env.BENCH_ZK_WARM_RUNS ?? 11);
const COLD_RUNS = Number(process.env.BENCH_ZK_COLD_RUNS ?? 3);
const DEPOSITS = Number(process.env.BENCH_ZK_DEPOSITS ?? 64);

const ANCHORS = {
  "Tornado Cash (depth 20, MiMC)": {
    constraints: 28271,
    proofSeconds: 10.2,
    depositGas: 1_090_000,
    withdrawGas: 301_000,
  },
  "Semaphore v4": { constraints: 6431, proofSeconds: "0.17-0.31", verifyGas: 285_000 },
};

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function gasOf(tx: Promise<ContractTransactionResponse>): Promise<number> {
  const r = await (await tx).wait();
  return Number(r?.gasUsed ?? 0n);
}

const popcount = (n: number): number => n.toString(2).replace(/0/g, "").length;

/**
 * A LeanIMT insertion hashes once per 1-bit of the leaf index: least squares of gas against that
 * count over the deposits after the first (the first also pays for fresh storage slots).
 */
function depositFormula(gas: number[]): {
  text: string;
  fixedGas: number;
  perHashGas: number;
  worstCaseAtDepth20: number;
} {
  const xs = gas.slice(1).map((_g, i) => popcount(i + 1));
  const ys = gas.slice(1);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < xs.length; i++) {
    sxy += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    sxx += ((xs[i] as number) - mx) ** 2;
  }
  const perHashGas = Math.round(sxy / sxx);
  const fixedGas = Math.round(my - perHashGas * mx);
  return {
    text: `deposit gas ~ ${fixedGas} + ${perHashGas} x popcount(leafIndex)`,
    fixedGas,
    perHashGas,
    worstCaseAtDepth20: fixedGas + perHashGas * ZK.treeDepth,
  };
}

/**
 * Deposit gas at the leaf indices a large pool reaches, measured on the real contract: after
 * ROOT_HISTORY_SIZE + 2 real deposits (so the root ring is past its first round, as in a live
 * pool) the LeanIMT's size, depth and side nodes are set in storage as a pool of `index` leaves
 * would have them, and one more deposit is measured. Layout (RootHistory declares the tree
 * first): slot 0 size, slot 1 depth, slot 2 the sideNodes mapping; checked through the views.
 */
async function depositGasAtIndices(
  mixer: Mixer,
  dso: Signer,
  indices: readonly number[],
  commitment: (i: number) => bigint,
): Promise<{ leafIndex: number; hashes: number; gas: number; depositManyOf10GasPerNote: number }[]> {
  const provider = hre.network.provider;
  const address = await mixer.getAddress();
  const slot = (n: bigint) => toBeHex(n, 32);
  const coder = AbiCoder.defaultAbiCoder();
  let next = 0;
  for (let i = 0; i < ZK.rootHistorySize + 2; i++) await (await mixer.connect(dso).deposit(commitment(next++))).wait();
  const setTree = async (index: number): Promise<void> => {
    const depth = Math.max(1, Math.ceil(Math.log2(index + 1)));
    await provider.send("hardhat_setStorageAt", [address, slot(0n), slot(BigInt(index))]);
    await provider.send("hardhat_setStorageAt", [address, slot(1n), slot(BigInt(depth))]);
    for (let level = 0; level <= depth; level++) {
      const key = keccak256(coder.encode(["uint256", "uint256"], [level, 2]));
      await provider.send("hardhat_setStorageAt", [address, key, slot(commitment(10_000_000 + level))]);
    }
    if ((await mixer.treeSize()) !== BigInt(index) || (await mixer.treeDepth()) !== BigInt(depth)) {
      throw new Error("bench-zk: the Mixer's storage layout changed; fix depositGasAtIndices");
    }
  };
  const out: { leafIndex: number; hashes: number; gas: number; depositManyOf10GasPerNote: number }[] = [];
  for (const index of indices) {
    await setTree(index);
    const gas = await gasOf(mixer.connect(dso).deposit(commitment(next++)));
    await setTree(Math.min(index, 2 ** ZK.treeDepth - 10));
    const batch = Array.from({ length: 10 }, () => commitment(next++));
    const batchGas = await gasOf(mixer.connect(dso).depositMany(batch));
    out.push({ leafIndex: index, hashes: popcount(index), gas, depositManyOf10GasPerNote: Math.round(batchGas / 10) });
  }
  return out;
}

const load1m = (): number => os.loadavg()[0] ?? 0;

async function timeProofs(
  name: CircuitName,
  inputs: CircuitInputs,
  options: ProverOptions,
): Promise<{
  coldSeconds: number;
  coldRunsSeconds: number[];
  coldLoadAverage1m: number[];
  warmMedianSeconds: number;
  warmSeconds: number[];
  warmLoadAverage1m: number[];
}> {
  const coldRunsSeconds: number[] = [];
  const coldLoadAverage1m: number[] = [];
  const warmSeconds: number[] = [];
  const warmLoadAverage1m: number[] = [];
  for (let run = 0; run < COLD_RUNS; run++) {
    await terminateCurveWorkers();
    const prover = new Prover(options);
    try {
      let t = performance.now();
      await prover.prove(name, inputs);
      coldRunsSeconds.push((performance.now() - t) / 1000);
      coldLoadAverage1m.push(load1m());
      if (run > 0) continue;
      for (let i = 0; i < WARM_RUNS; i++) {
        t = performance.now();
        await prover.prove(name, inputs);
        warmSeconds.push((performance.now() - t) / 1000);
        warmLoadAverage1m.push(load1m());
      }
    } finally {
      await prover.close();
    }
  }
  return {
    coldSeconds: median(coldRunsSeconds),
    coldRunsSeconds,
    coldLoadAverage1m,
    warmMedianSeconds: median(warmSeconds),
    warmSeconds,
    warmLoadAverage1m,
  };
}

interface AlternatingTimes {
  warmupSeconds: number;
  warmupLoadAverage1m: number;
  warmMedianSeconds: number;
  warmSeconds: number[];
  /** The 1-minute load average right after each proof of warmSeconds. */
  warmLoadAverage1m: number[];
}

/**
 * Warm proofs of several long-lived Provers in alternation: each is warmed (timed), proves once
 * untimed, then they take turns, one proof each per round for WARM_RUNS rounds, so a change in
 * the machine's load hits all of them alike.
 */
async function timeAlternating(
  name: CircuitName,
  inputs: CircuitInputs,
  variants: Record<string, ProverOptions>,
): Promise<Record<string, AlternatingTimes>> {
  await terminateCurveWorkers();
  const provers = Object.entries(variants).map(([label, options]) => ({ label, prover: new Prover(options) }));
  const out: Record<string, AlternatingTimes> = {};
  try {
    for (const { label, prover } of provers) {
      const t = performance.now();
      await prover.warm(name);
      const warmupSeconds = (performance.now() - t) / 1000;
      await prover.prove(name, inputs);
      out[label] = {
        warmupSeconds,
        warmupLoadAverage1m: load1m(),
        warmMedianSeconds: 0,
        warmSeconds: [],
        warmLoadAverage1m: [],
      };
    }
    for (let i = 0; i < WARM_RUNS; i++) {
      for (const { label, prover } of provers) {
        const t = performance.now();
        await prover.prove(name, inputs);
        const row = out[label] as AlternatingTimes;
        row.warmSeconds.push((performance.now() - t) / 1000);
        row.warmLoadAverage1m.push(load1m());
      }
    }
  } finally {
    for (const { prover } of provers) await prover.close();
  }
  for (const row of Object.values(out)) row.warmMedianSeconds = median(row.warmSeconds);
  return out;
}

const ratio = (slow: AlternatingTimes | undefined, fast: AlternatingTimes | undefined): number =>
  slow && fast ? Math.round((slow.warmMedianSeconds / fast.warmMedianSeconds) * 100) / 100 : Number.NaN;

/** Native multi-exponentiations against wasm on one circuit: cold, and warm in alternation. */
async function nativeAgainstWasm(name: CircuitName, inputs: CircuitInputs): Promise<Record<string, unknown>> {
  // gcc runs once per checkout and source, not per Prover: keep it out of the cold proofs.
  const t = performance.now();
  await nativeMsmBinary();
  const buildSeconds = (performance.now() - t) / 1000;
  const cold = await timeProofs(name, inputs, { msm: "native" });
  const warm = await timeAlternating(name, inputs, {
    native: { msm: "native" },
    "native, precomputeBases": { msm: "native", precomputeBases: true },
    wasm: { msm: "wasm" },
    "wasm, precomputeBases": { msm: "wasm", precomputeBases: true },
    "native, threads single": { msm: "native", threads: "single" },
  });
  return {
    buildSecondsIfNotCached: buildSeconds,
    cold: {
      coldSeconds: cold.coldSeconds,
      coldRunsSeconds: cold.coldRunsSeconds,
      coldLoadAverage1m: cold.coldLoadAverage1m,
    },
    warmAlternating: warm,
    wasmOverNative: ratio(warm.wasm, warm.native),
    wasmPrecomputedOverNativePrecomputed: ratio(warm["wasm, precomputeBases"], warm["native, precomputeBases"]),
    wasmPrecomputedOverNative: ratio(warm["wasm, precomputeBases"], warm.native),
  };
}

/**
 * Warm proofs of a long-lived Prover with `options` (precomputed fixed-base tables, or a single
 * thread): its warm-up, then WARM_RUNS proofs, with the load average at the time (the machine is
 * shared, so a run under load is an upper bound).
 */
async function timeWarmProofs(
  name: CircuitName,
  inputs: CircuitInputs,
  options: ProverOptions,
): Promise<{ warmupSeconds: number; warmMedianSeconds: number; warmSeconds: number[]; loadAverage1m: number }> {
  await terminateCurveWorkers();
  const prover = new Prover(options);
  try {
    let t = performance.now();
    await prover.warm(name);
    const warmupSeconds = (performance.now() - t) / 1000;
    await prover.prove(name, inputs);
    const warmSeconds: number[] = [];
    for (let i = 0; i < WARM_RUNS; i++) {
      t = performance.now();
      await prover.prove(name, inputs);
      warmSeconds.push((performance.now() - t) / 1000);
    }
    return { warmupSeconds, warmMedianSeconds: median(warmSeconds), warmSeconds, loadAverage1m: load1m() };
  } finally {
    await prover.close();
  }
}

export async function benchZk(): Promise<Record<string, unknown>> {
  const manifest = JSON.parse(fs.readFileSync(path.join(ARTIFACTS_DIR, "manifest.json"), "utf8"));
  const poseidon = await buildPoseidon();
  const [dso, relayer, ...others] = await hre.ethers.getSigners();
  const market = await (await hre.ethers.getContractFactory("EnergyMarket", dso)).deploy();
  await market.waitForDeployment();
  const denomination = ZK.mixer.denominations[0] as bigint;
  const zk = await deployZk({ marketAddress: await market.getAddress(), dso, denominations: [denomination] });
  const mixer = zk.mixers.get(denomination);
  if (!mixer) throw new Error("no mixer deployed");

  // Deposits: LeanIMT cost depends on the leaf index (one Poseidon per 1-bit), so report a spread.
  let seed = 1;
  const rnd = (n: number) => Uint8Array.from({ length: n }, () => seed++ & 0xff);
  const notes = Array.from({ length: DEPOSITS }, () => createNote({ chainId: 31337n, denomination, randomBytes: rnd }));
  const depositGas: number[] = [];
  for (const n of notes) depositGas.push(await gasOf(mixer.connect(dso).deposit(noteCommitment(poseidon, n))));
  const tree = await MerkleTree.create({ leaves: notes.map((n) => noteCommitment(poseidon, n)) });

  const recipient = others[0].address as string;
  const note = notes[DEPOSITS - 1] as (typeof notes)[number];
  const p = tree.proof(DEPOSITS - 1);
  const mixerInputs: CircuitInputs = {
    root: tree.root,
    nullifierHash: noteNullifierHash(poseidon, note),
    recipient: BigInt(recipient),
    relayer: BigInt(relayer.address),
    fee: 25n,
    nullifier: note.nullifier,
    secret: note.secret,
    depth: p.depth,
    leafIndex: p.leafIndex,
    siblings: p.siblings,
  };
  const mixerTimes = await timeProofs("mixer-withdraw", mixerInputs, { msm: "wasm" });
  const mixerTimesPrecomputed = await timeWarmProofs("mixer-withdraw", mixerInputs, {
    msm: "wasm",
    precomputeBases: true,
  });
  const mixerTimesSingle = await timeWarmProofs("mixer-withdraw", mixerInputs, { msm: "wasm", threads: "single" });
  const mixerNative = await nativeAgainstWasm("mixer-withdraw", mixerInputs);

  const prover = new Prover();
  const proved = await prover.prove("mixer-withdraw", mixerInputs);
  const sp = toSolidityProof(proved.proof);
  // The Mixer verifies inline (a library); the harness calls the same library from a transaction
  // that does nothing else, so its gas is comparable to a call into a separate verifier contract.
  const verifier = await new MixerWithdrawVerifierHarness__factory(dso).deploy();
  const verifyCallGas = Number(
    await verifier.verifyProof.estimateGas(
      sp.pA,
      sp.pB,
      sp.pC,
      proved.publicSignals.map(BigInt) as [bigint, bigint, bigint],
    ),
  );
  const withdrawGas = await gasOf(
    mixer
      .connect(relayer)
      .withdraw(sp.pA, sp.pB, sp.pC, tree.root, mixerInputs.nullifierHash as bigint, recipient, relayer.address, 25n),
  );
  // Steady state: the relayer already holds a balance (the first withdrawal paid for its slot).
  const note2 = notes[DEPOSITS - 2] as (typeof notes)[number];
  const p2 = tree.proof(DEPOSITS - 2);
  const recipient2 = others[2].address as string;
  const proved2 = await prover.prove("mixer-withdraw", {
    ...mixerInputs,
    nullifierHash: noteNullifierHash(poseidon, note2),
    recipient: BigInt(recipient2),
    nullifier: note2.nullifier,
    secret: note2.secret,
    depth: p2.depth,
    leafIndex: p2.leafIndex,
    siblings: p2.siblings,
  });
  const sp2 = toSolidityProof(proved2.proof);
  const withdrawSteadyGas = await gasOf(
    mixer
      .connect(relayer)
      .withdraw(
        sp2.pA,
        sp2.pB,
        sp2.pC,
        tree.root,
        noteNullifierHash(poseidon, note2),
        recipient2,
        relayer.address,
        25n,
      ),
  );

  // Allowance: issue a few, withdraw from one with all three parts non-empty.
  const vault = zk.vault;
  const allowances: Allowance[] = [2500n, 4000n, 3000n, 3500n].map((capW) => ({
    capW,
    windowStart: 96n,
    windowEnd: 191n,
    secret: freshSecret(rnd),
    nullifier: freshSecret(rnd),
  }));
  const issueGas: number[] = [];
  for (const a of allowances) issueGas.push(await gasOf(vault.connect(dso).issue(allowanceCommitment(poseidon, a))));
  const aTree = await MerkleTree.create({ leaves: allowances.map((a) => allowanceCommitment(poseidon, a)) });
  const spent = allowances[2] as Allowance;
  const request = { powerW: 1200n, start: 120n, end: 130n, recipient: BigInt(others[1].address) };
  const parts = splitAllowance(spent, request, rnd);
  const allowanceInputs = allowanceWithdrawInputs(
    spent,
    aTree.proof(2),
    request,
    parts,
    allowanceNullifierHash(poseidon, spent),
    poseidon,
  );
  const allowanceTimes = await timeProofs("allowance-withdraw", allowanceInputs, { msm: "wasm" });
  const allowanceTimesPrecomputed = await timeWarmProofs("allowance-withdraw", allowanceInputs, {
    msm: "wasm",
    precomputeBases: true,
  });
  const allowanceNative = await nativeAgainstWasm("allowance-withdraw", allowanceInputs);
  const prover2 = new Prover();
  const aProved = await prover2.prove("allowance-withdraw", allowanceInputs);
  const ap = toSolidityProof(aProved.proof);
  const newCommitments = parts.map((x) => allowanceCommitment(poseidon, x)) as [bigint, bigint, bigint];
  const allowanceWithdrawGas = await gasOf(
    vault
      .connect(relayer)
      .withdraw(
        ap.pA,
        ap.pB,
        ap.pC,
        aTree.root,
        allowanceNullifierHash(poseidon, spent),
        request.powerW,
        request.start,
        request.end,
        others[1].address,
        newCommitments,
      ),
  );
  await prover.close();
  await prover2.close();

  // Deposit gas as the pool grows: a LeanIMT insertion hashes once per 1-bit of the leaf index,
  // so a pool of 2^m leaves costs fixed + perHash x m/2 on average and fixed + perHash x m at worst.
  const pool2 = (
    await deployZk({ marketAddress: await market.getAddress(), dso, denominations: [denomination] })
  ).mixers.get(denomination) as Mixer;
  const alternating = (m: number) => Number.parseInt("10".repeat(m).slice(0, m), 2);
  const grown = await depositGasAtIndices(
    pool2,
    dso,
    [10, 14, 17, 20].flatMap((m) => [alternating(m), 2 ** m - 1]),
    (i) => BigInt(i) + 1n,
  );

  return {
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      node: process.version,
      loadAverage1m: os.loadavg()[0],
      note: "cores shared with other jobs: with a load average above the core count, times are upper bounds",
    },
    ceremony: "deterministic TEST ceremony (circuits/build.ts), not a production setup",
    treeDepth: ZK.treeDepth,
    mixer: {
      constraints: manifest.circuits["mixer-withdraw"].constraints,
      proveColdSeconds: mixerTimes.coldSeconds,
      proveColdRunsSeconds: mixerTimes.coldRunsSeconds,
      proveWarmMedianSeconds: mixerTimes.warmMedianSeconds,
      proveWarmSeconds: mixerTimes.warmSeconds,
      proveColdLoadAverage1m: mixerTimes.coldLoadAverage1m,
      proveWarmLoadAverage1m: mixerTimes.warmLoadAverage1m,
      precomputedBases: mixerTimesPrecomputed,
      singleThread: mixerTimesSingle,
      native: mixerNative,
      verifyProofCallGas: verifyCallGas,
      depositGas: {
        deposits: DEPOSITS,
        first: depositGas[0],
        median: median(depositGas),
        max: Math.max(...depositGas),
        min: Math.min(...depositGas),
      },
      depositGasFormula: depositFormula(depositGas),
      depositGasAsThePoolGrows: grown,
      withdrawGasWithRelayerFee: { relayerFirstPayout: withdrawGas, relayerAlreadyFunded: withdrawSteadyGas },
    },
    allowance: {
      constraints: manifest.circuits["allowance-withdraw"].constraints,
      proveColdSeconds: allowanceTimes.coldSeconds,
      proveColdRunsSeconds: allowanceTimes.coldRunsSeconds,
      proveWarmMedianSeconds: allowanceTimes.warmMedianSeconds,
      proveWarmSeconds: allowanceTimes.warmSeconds,
      proveColdLoadAverage1m: allowanceTimes.coldLoadAverage1m,
      proveWarmLoadAverage1m: allowanceTimes.warmLoadAverage1m,
      precomputedBases: allowanceTimesPrecomputed,
      native: allowanceNative,
      issueGas,
      withdrawGasThreeParts: allowanceWithdrawGas,
    },
    anchors: ANCHORS,
  };
}

if (require.main === module) {
  const out = path.join(__dirname, "..", "bench", "zk.json");
  // The relayer path and the agent-level costs (analysis/bench-zk-relayer.ts) come after the rest;
  // BENCH_ZK_ONLY=relayer measures just those and merges them into the existing bench/zk.json.
  const base =
    process.env.BENCH_ZK_ONLY === "relayer"
      ? Promise.resolve(JSON.parse(fs.readFileSync(out, "utf8")) as Record<string, unknown>)
      : benchZk();
  base
    .then(async (r) => ({ ...r, ...(await benchZkRelayer()) }))
    .then((r) => {
      fs.mkdirSync(path.dirname(out), { recursive: true });
      fs.writeFileSync(out, `${JSON.stringify(r, null, 2)}\n`);
      console.log(JSON.stringify(r, null, 2));
      return terminateCurveWorkers();
    })
    .catch(async (e) => {
      await terminateCurveWorkers();
      console.error(e);
      process.exitCode = 1;
    });
}
