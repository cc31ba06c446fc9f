/**
 * Groth16 proving from a zkey parsed once. The same computation as snarkjs' groth16.prove, with
 * the same ffjavascript primitives and the same worker threads, minus the work snarkjs repeats on
 * every call and with its steps overlapped:
 * - the zkey's header is parsed and its sections sliced once (snarkjs re-parses the file and
 *   copies every section on every proof);
 * - bases that are the point at infinity (a third of B's: wires that appear in no B column) are
 *   dropped once, with their scalars at proving time, so the B multi-exponentiations move a third
 *   less data to the workers;
 * - the QAP evaluation (A·w, B·w, C = A∘B over the constraint domain) runs in wasm in a worker,
 *   not as a JavaScript loop of ~20k field operations on the main thread (~60 ms);
 * - the multi-exponentiations that need only the witness (A, B1, B2, C) are queued at once, so
 *   the workers never wait on the main thread while it runs the FFT chain that H needs.
 * Optionally (addBaseTables) the fixed bases are precomputed: every base times 2^(12j) for each of
 * the 22 windows of a 254-bit scalar, so a multi-exponentiation becomes ONE bucket pass over
 * 22 x n points with 12-bit digits, instead of 22 passes over n points that each sum their own 2^12
 * buckets; the same number of point additions, but one bucket reduction instead of 22 (and no
 * doublings). Measured 1.1-1.5x per multi-exponentiation (1.5x on B in G2, 1.3x over all five)
 * and ~1.5x on a whole warm proof; it costs ~45 MB per circuit and 5-10 s of warm-up, so it is
 * for long-lived provers.
 * With addNativeBases the five multi-exponentiations and the six FFTs run in native code instead
 * (mixer/native-msm.ts: a C child process); the witness, the QAP evaluation and the final
 * additions stay on ffjavascript.
 * The proof is a proof like any other: tests verify it with snarkjs and on chain.
 */
import type { GroupName, NativeMsm } from "./native-msm";
import type { Groth16Proof } from "./snarkjs";

/** The slice of ffjavascript's curve that the prover uses (untyped upstream). */
type Point = Uint8Array;
interface Group {
  zero: Point;
  F: { n8: number };
  batchApplyKey(buff: Uint8Array, first: bigint, inc: bigint, inType: "affine", outType: "affine"): Promise<Uint8Array>;
  add(a: Point, b: Point): Point;
  timesFr(a: Point, s: Uint8Array): Point;
  toAffine(a: Point): Point;
  toObject(a: Point): bigint[] | bigint[][];
  multiExpAffine(bases: Uint8Array, scalars: Uint8Array): Promise<Point>;
}
interface ScalarField {
  n8: number;
  s: number;
  shift: Uint8Array;
  w: Uint8Array[];
  e(x: bigint | number): Uint8Array;
  mul(a: Uint8Array, b: Uint8Array): Uint8Array;
  neg(a: Uint8Array): Uint8Array;
  random(): Uint8Array;
  ifft(buff: Uint8Array): Promise<Uint8Array>;
  fft(buff: Uint8Array): Promise<Uint8Array>;
  batchApplyKey(buff: Uint8Array, first: Uint8Array, inc: Uint8Array): Promise<Uint8Array>;
}
type TaskCommand =
  | { cmd: "ALLOCSET"; var: number; buff: Uint8Array }
  | { cmd: "ALLOC"; var: number; len: number }
  | { cmd: "CALL"; fnName: string; params: ({ var: number } | { val: number })[] }
  | { cmd: "GET"; out: number; var: number; len: number };
export interface Bn128Curve {
  G1: Group;
  G2: Group;
  Fr: ScalarField;
  tm: { queueAction(task: TaskCommand[]): Promise<Uint8Array[]> };
}

/** BN254's scalar field modulus, which a zkey for this curve must carry. */
const BN254_R = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;

interface Bases {
  /** Affine points (ffjavascript's little-endian Montgomery form), points at infinity removed. */
  points: Uint8Array;
  /** Witness index of each kept point, or null when none was removed (the identity mapping). */
  wires: Uint32Array | null;
  /** Offset of wire 0 in the scalar array this set is multiplied with. */
  firstWire: number;
  /** Bytes per affine point: 64 in G1, 128 in G2. */
  pointBytes: number;
  /** Fixed-base table, one part per worker thread (see addBaseTables). */
  table?: TablePart[];
  /** The same points held by a native multi-exponentiation process (see addNativeBases). */
  native?: { msm: NativeMsm; set: number };
}

/** Bases first..first+count-1 of a set, each followed by its multiples by 2^(WINDOW_BITS·j), j < WINDOWS. */
interface TablePart {
  points: Uint8Array;
  first: number;
  count: number;
}

const WINDOW_BITS = 12;
/** Scalars are below BN254's r < 2^254. */
const WINDOWS = Math.ceil(254 / WINDOW_BITS);

/** A Groth16 proving key, parsed once. */
export interface ProvingKey {
  readonly nVars: number;
  readonly nPublic: number;
  readonly domainSize: number;
  readonly nCoefs: number;
  /** QAP coefficients: per entry matrix (u32), constraint (u32), wire (u32), value (32 bytes, Montgomery). */
  readonly coefs: Uint8Array;
  readonly a: Bases;
  readonly b1: Bases;
  readonly b2: Bases;
  readonly c: Bases;
  readonly h: Bases;
  readonly alpha1: Point;
  readonly beta1: Point;
  readonly beta2: Point;
  readonly delta1: Point;
  readonly delta2: Point;
}

function readSections(file: Uint8Array, magic: string): Map<number, Uint8Array> {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const seen = String.fromCharCode(...file.subarray(0, 4));
  if (seen !== magic) throw new Error(`not a ${magic} file (starts with "${seen}")`);
  const nSections = view.getUint32(8, true);
  const sections = new Map<number, Uint8Array>();
  let pos = 12;
  for (let i = 0; i < nSections; i++) {
    const type = view.getUint32(pos, true);
    const size = Number(view.getBigUint64(pos + 4, true));
    pos += 12;
    if (!sections.has(type)) sections.set(type, file.subarray(pos, pos + size));
    pos += size;
  }
  return sections;
}

function section(sections: Map<number, Uint8Array>, id: number): Uint8Array {
  const s = sections.get(id);
  if (!s) throw new Error(`zkey: section ${id} is missing`);
  return s;
}

const leBigInt = (bytes: Uint8Array): bigint => {
  let x = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(bytes[i] as number);
  return x;
};

/** Drops the points at infinity (all-zero bytes) of a base section, remembering each kept point's wire. */
function compact(points: Uint8Array, pointBytes: number, firstWire: number): Bases {
  const n = points.byteLength / pointBytes;
  const kept: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = points.subarray(i * pointBytes, (i + 1) * pointBytes);
    if (p.some((byte) => byte !== 0)) kept.push(i);
  }
  if (kept.length === n) return { points: points.slice(), wires: null, firstWire, pointBytes };
  const out = new Uint8Array(kept.length * pointBytes);
  kept.forEach((wire, j) => {
    out.set(points.subarray(wire * pointBytes, (wire + 1) * pointBytes), j * pointBytes);
  });
  return { points: out, wires: Uint32Array.from(kept), firstWire, pointBytes };
}

/** Parses a Groth16 zkey (snarkjs' binary format) for BN254. */
export function parseProvingKey(zkey: Uint8Array): ProvingKey {
  const sections = readSections(zkey, "zkey");
  const protocol = new DataView(section(sections, 1).buffer, section(sections, 1).byteOffset).getUint32(0, true);
  if (protocol !== 1) throw new Error(`zkey: protocol ${protocol} is not Groth16`);
  const h = section(sections, 2);
  const hv = new DataView(h.buffer, h.byteOffset, h.byteLength);
  let pos = 0;
  const n8q = hv.getUint32(pos, true);
  pos += 4 + n8q;
  const n8r = hv.getUint32(pos, true);
  const r = leBigInt(h.subarray(pos + 4, pos + 4 + n8r));
  if (n8q !== 32 || n8r !== 32 || r !== BN254_R) throw new Error("zkey: not a BN254 key");
  pos += 4 + n8r;
  const nVars = hv.getUint32(pos, true);
  const nPublic = hv.getUint32(pos + 4, true);
  const domainSize = hv.getUint32(pos + 8, true);
  pos += 12;
  const take = (bytes: number): Uint8Array => {
    const p = h.slice(pos, pos + bytes);
    pos += bytes;
    return p;
  };
  const alpha1 = take(64);
  const beta1 = take(64);
  const beta2 = take(128);
  take(128); // gamma2: verification only
  const delta1 = take(64);
  const delta2 = take(128);

  const coefSection = section(sections, 4);
  const nCoefs = new DataView(coefSection.buffer, coefSection.byteOffset).getUint32(0, true);
  return {
    nVars,
    nPublic,
    domainSize,
    nCoefs,
    coefs: coefSection.slice(4),
    a: compact(section(sections, 5), 64, 0),
    b1: compact(section(sections, 6), 64, 0),
    b2: compact(section(sections, 7), 128, 0),
    c: compact(section(sections, 8), 64, nPublic + 1),
    h: { points: section(sections, 9).slice(), wires: null, firstWire: 0, pointBytes: 64 },
    alpha1,
    beta1,
    beta2,
    delta1,
    delta2,
  };
}

/** The witness section of a .wtns file (snarkjs' binary format), checked against the key. */
function witnessOf(key: ProvingKey, wtns: Uint8Array): Uint8Array {
  const sections = readSections(wtns, "wtns");
  const header = section(sections, 1);
  const hv = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const n8 = hv.getUint32(0, true);
  const prime = leBigInt(header.subarray(4, 4 + n8));
  const nWitness = hv.getUint32(4 + n8, true);
  if (n8 !== 32 || prime !== BN254_R) throw new Error("witness: not over BN254's scalar field");
  if (nWitness !== key.nVars) throw new Error(`witness: ${nWitness} values, the circuit has ${key.nVars}`);
  return section(sections, 2);
}

/** The scalars a base set multiplies: the witness (from firstWire), gathered where points were dropped. */
function scalarsFor(bases: Bases, scalars: Uint8Array): Uint8Array {
  if (!bases.wires) return scalars.subarray(bases.firstWire * 32);
  const out = new Uint8Array(bases.wires.length * 32);
  bases.wires.forEach((wire, j) => {
    const at = (bases.firstWire + wire) * 32;
    out.set(scalars.subarray(at, at + 32), j * 32);
  });
  return out;
}

/** Builds the fixed-base tables of every base set of `key` (seconds of worker time, ~45 MB). */
export async function addBaseTables(curve: Bn128Curve, key: ProvingKey, parts: number): Promise<void> {
  for (const [bases, group] of [
    [key.a, curve.G1],
    [key.b1, curve.G1],
    [key.b2, curve.G2],
    [key.c, curve.G1],
    [key.h, curve.G1],
  ] as const) {
    if (bases.table) continue;
    const size = bases.pointBytes;
    const n = bases.points.byteLength / size;
    const layers: Uint8Array[] = [bases.points];
    for (let j = 1; j < WINDOWS; j++) {
      layers.push(
        await group.batchApplyKey(layers[j - 1] as Uint8Array, 1n << BigInt(WINDOW_BITS), 1n, "affine", "affine"),
      );
    }
    const per = Math.ceil(n / parts);
    const table: TablePart[] = [];
    for (let first = 0; first < n; first += per) {
      const count = Math.min(per, n - first);
      const points = new Uint8Array(count * WINDOWS * size);
      for (let i = 0; i < count; i++) {
        for (let j = 0; j < WINDOWS; j++) {
          const from = (first + i) * size;
          points.set((layers[j] as Uint8Array).subarray(from, from + size), (i * WINDOWS + j) * size);
        }
      }
      table.push({ points, first, count });
    }
    bases.table = table;
  }
}

/**
 * Hands every base set of `key` to `msm` (once: it keeps them, and sends them again itself to a
 * restarted process), with fixed-base tables if asked for, after which multiExp computes with it.
 */
export async function addNativeBases(key: ProvingKey, msm: NativeMsm, tables: boolean): Promise<void> {
  const sets: [Bases, GroupName][] = [
    [key.a, "G1"],
    [key.b1, "G1"],
    [key.b2, "G2"],
    [key.c, "G1"],
    [key.h, "G1"],
  ];
  const handles = await Promise.all(sets.map(([bases, group]) => msm.addBases(group, bases.points)));
  if (tables) await Promise.all(handles.map((set) => msm.addTable(set)));
  sets.forEach(([bases], i) => {
    bases.native = { msm, set: handles[i] as number };
  });
}

/** The WINDOW_BITS-bit digits of scalars first..first+count-1 (32 bytes each, little-endian), as uint16. */
function digits(scalars: Uint8Array, first: number, count: number): Uint8Array {
  const out = new Uint16Array(count * WINDOWS);
  const mask = (1 << WINDOW_BITS) - 1;
  for (let i = 0; i < count; i++) {
    const o = (first + i) * 32;
    for (let j = 0; j < WINDOWS; j++) {
      const bit = j * WINDOW_BITS;
      const byte = bit >> 3;
      const v =
        (scalars[o + byte] as number) |
        (byte + 1 < 32 ? (scalars[o + byte + 1] as number) << 8 : 0) |
        (byte + 2 < 32 ? (scalars[o + byte + 2] as number) << 16 : 0);
      out[i * WINDOWS + j] = (v >>> (bit & 7)) & mask;
    }
  }
  return new Uint8Array(out.buffer);
}

/**
 * Σ scalar_i · base_i (scalars in standard form: the witness as the .wtns holds it, H's after
 * frm_batchFromMontgomery): natively when the bases were handed to a native process, else one
 * bucket pass per worker over the fixed-base table, else snarkjs' windowed method.
 */
async function multiExp(curve: Bn128Curve, group: Group, bases: Bases, scalars: Uint8Array): Promise<Point> {
  if (bases.native) return bases.native.msm.multiExp(bases.native.set, scalars);
  if (!bases.table) return group.multiExpAffine(bases.points, scalars);
  const fnName = group === curve.G1 ? "g1m_multiexpAffine_chunk" : "g2m_multiexpAffine_chunk";
  const len = group.F.n8 * 3;
  const results = await Promise.all(
    bases.table.map((part) =>
      curve.tm.queueAction([
        { cmd: "ALLOCSET", var: 0, buff: part.points },
        { cmd: "ALLOCSET", var: 1, buff: digits(scalars, part.first, part.count) },
        { cmd: "ALLOC", var: 2, len },
        {
          cmd: "CALL",
          fnName,
          params: [
            { var: 0 },
            { var: 1 },
            { val: 2 },
            { val: part.count * WINDOWS },
            { val: 0 },
            { val: WINDOW_BITS },
            { var: 2 },
          ],
        },
        { cmd: "GET", out: 0, var: 2, len },
      ]),
    ),
  );
  return results.reduce((sum, r) => group.add(sum, r[0] as Point), group.zero);
}

/** A·w, B·w over the constraint domain and C = A∘B, in wasm in one worker (snarkjs' buildABC1). */
async function evaluateQap(curve: Bn128Curve, key: ProvingKey, witness: Uint8Array): Promise<Uint8Array[]> {
  const len = key.domainSize * 32;
  return curve.tm.queueAction([
    { cmd: "ALLOCSET", var: 0, buff: key.coefs },
    { cmd: "ALLOCSET", var: 1, buff: witness },
    { cmd: "ALLOC", var: 2, len },
    { cmd: "ALLOC", var: 3, len },
    { cmd: "ALLOC", var: 4, len },
    {
      cmd: "CALL",
      fnName: "qap_buildABC",
      params: [
        { var: 0 },
        { val: key.nCoefs },
        { var: 1 },
        { var: 2 },
        { var: 3 },
        { var: 4 },
        { val: 0 },
        { val: key.domainSize },
        { val: 0 },
        { val: key.nVars },
      ],
    },
    { cmd: "GET", out: 0, var: 2, len },
    { cmd: "GET", out: 1, var: 3, len },
    { cmd: "GET", out: 2, var: 4, len },
  ]);
}

/**
 * H's scalars: A, B, C evaluated on the odd coset of the domain, joined as (A·B - C) (snarkjs'
 * steps), in the native process when the key's bases are there, else in the wasm workers.
 */
async function quotientScalars(curve: Bn128Curve, key: ProvingKey, witness: Uint8Array): Promise<Uint8Array> {
  const { Fr } = curve;
  const [a, b, c] = (await evaluateQap(curve, key, witness)) as [Uint8Array, Uint8Array, Uint8Array];
  const power = Math.log2(key.domainSize);
  const inc = power === Fr.s ? Fr.shift : (Fr.w[power + 1] as Uint8Array);
  const native = key.h.native;
  if (native) return native.msm.quotient(key.domainSize, Fr.w[power] as Uint8Array, inc, a, b, c);
  const odd = async (evaluations: Uint8Array): Promise<Uint8Array> =>
    Fr.fft(await Fr.batchApplyKey(await Fr.ifft(evaluations), Fr.e(1), inc));
  const [aOdd, bOdd, cOdd] = await Promise.all([odd(a), odd(b), odd(c)]);
  const n = key.domainSize;
  const [joined] = await curve.tm.queueAction([
    { cmd: "ALLOCSET", var: 0, buff: aOdd },
    { cmd: "ALLOCSET", var: 1, buff: bOdd },
    { cmd: "ALLOCSET", var: 2, buff: cOdd },
    { cmd: "ALLOC", var: 3, len: n * 32 },
    { cmd: "CALL", fnName: "qap_joinABC", params: [{ var: 0 }, { var: 1 }, { var: 2 }, { val: n }, { var: 3 }] },
    { cmd: "CALL", fnName: "frm_batchFromMontgomery", params: [{ var: 3 }, { val: n }, { var: 3 }] },
    { cmd: "GET", out: 0, var: 3, len: n * 32 },
  ]);
  return joined as Uint8Array;
}

const decimal = (x: bigint | bigint[] | bigint[][]): string[] | string[][] =>
  (x as (bigint | bigint[])[]).map((v) => (Array.isArray(v) ? v.map(String) : String(v))) as string[] | string[][];

/** A Groth16 proof for the witness in `wtns` (a .wtns file in memory), and its public signals. */
export async function proveGroth16(
  curve: Bn128Curve,
  key: ProvingKey,
  wtns: Uint8Array,
): Promise<{ proof: Groth16Proof; publicSignals: string[] }> {
  const { G1, G2, Fr } = curve;
  const witness = witnessOf(key, wtns);
  // Everything that needs only the witness goes to the workers first; H waits for the FFTs.
  const msmA = multiExp(curve, G1, key.a, scalarsFor(key.a, witness));
  const msmB1 = multiExp(curve, G1, key.b1, scalarsFor(key.b1, witness));
  const msmB2 = multiExp(curve, G2, key.b2, scalarsFor(key.b2, witness));
  const msmC = multiExp(curve, G1, key.c, scalarsFor(key.c, witness));
  const msmH = quotientScalars(curve, key, witness).then((s) => multiExp(curve, G1, key.h, s));
  const [a, b1, b2, c, h] = await Promise.all([msmA, msmB1, msmB2, msmC, msmH]);

  const r = Fr.random();
  const s = Fr.random();
  const piA = G1.add(G1.add(a, key.alpha1), G1.timesFr(key.delta1, r));
  const piB = G2.add(G2.add(b2, key.beta2), G2.timesFr(key.delta2, s));
  const pib1 = G1.add(G1.add(b1, key.beta1), G1.timesFr(key.delta1, s));
  let piC = G1.add(c, h);
  piC = G1.add(piC, G1.timesFr(piA, s));
  piC = G1.add(piC, G1.timesFr(pib1, r));
  piC = G1.add(piC, G1.timesFr(key.delta1, Fr.neg(Fr.mul(r, s))));

  const publicSignals: string[] = [];
  for (let i = 1; i <= key.nPublic; i++)
    publicSignals.push(leBigInt(witness.subarray(i * 32, (i + 1) * 32)).toString());
  return {
    proof: {
      pi_a: decimal(G1.toObject(G1.toAffine(piA))) as string[],
      pi_b: decimal(G2.toObject(G2.toAffine(piB))) as string[][],
      pi_c: decimal(G1.toObject(G1.toAffine(piC))) as string[],
      protocol: "groth16",
      curve: "bn128",
    },
    publicSignals,
  };
}
