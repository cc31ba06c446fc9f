/**
 * Mixer notes: the secret a depositor keeps to withdraw later. Text form:
 *
 *   petra-mixer-v1-<chainId>-<denomination>-<nullifier: 62 hex><secret: 62 hex>-<checksum: 8 hex>
 *
 * The checksum (first 4 bytes of SHA-256 over everything before it) catches a note mangled in
 * copy and paste before it costs a failed proof. Nullifier and secret are 31 random bytes each,
 * below the field modulus by construction. Errors never echo the note: it is the money.
 */
import { createHash, randomBytes as nodeRandomBytes } from "node:crypto";
import { check, PetraError } from "../common/errors";
import { ZK } from "../common/zk-params";
import type { Poseidon } from "./poseidon";

export interface MixerNote {
  readonly chainId: bigint;
  /** Money units; one of the mixer denominations in common/zk-constants.json. */
  readonly denomination: bigint;
  readonly nullifier: bigint;
  readonly secret: bigint;
}

export interface CreateNoteOptions {
  chainId: bigint;
  denomination: bigint;
  /** Source of key material; defaults to the OS CSPRNG. Inject a seeded one only in tests. */
  randomBytes?: (n: number) => Uint8Array;
}

const PREFIX = "petra-mixer";
const VERSION = "v1";
const SECRET_BYTES = 31;
const HEX_PER_VALUE = SECRET_BYTES * 2;

export function createNote(options: CreateNoteOptions): MixerNote {
  const { chainId, denomination } = options;
  check(typeof chainId === "bigint" && chainId > 0n, "chainId", "must be a positive bigint");
  check(
    ZK.mixer.denominations.includes(denomination),
    "denomination",
    `must be one of ${ZK.mixer.denominations.join(", ")}`,
    {
      denomination,
    },
  );
  const random = options.randomBytes ?? ((n: number) => nodeRandomBytes(n));
  const draw = (): bigint => {
    const bytes = random(SECRET_BYTES);
    check(bytes.length === SECRET_BYTES, "randomBytes", `must return ${SECRET_BYTES} bytes`);
    return BigInt(`0x${Buffer.from(bytes).toString("hex")}`);
  };
  return { chainId, denomination, nullifier: draw(), secret: draw() };
}

/** The leaf a deposit inserts: Poseidon(3)(domain, nullifier, secret). */
export function noteCommitment(poseidon: Poseidon, note: MixerNote): bigint {
  return poseidon([ZK.mixer.commitmentDomain, note.nullifier, note.secret]);
}

/** The value a withdrawal reveals and the contract marks spent: Poseidon(1)(nullifier). */
export function noteNullifierHash(poseidon: Poseidon, note: MixerNote): bigint {
  return poseidon([note.nullifier]);
}

function checksum(body: string): string {
  return createHash("sha256").update(body).digest("hex").slice(0, 8);
}

const hex62 = (x: bigint): string => x.toString(16).padStart(HEX_PER_VALUE, "0");

export function serializeNote(note: MixerNote): string {
  check(note.nullifier >= 0n && note.nullifier < 1n << 248n, "note.nullifier", "must fit in 31 bytes");
  check(note.secret >= 0n && note.secret < 1n << 248n, "note.secret", "must fit in 31 bytes");
  const body = `${PREFIX}-${VERSION}-${note.chainId}-${note.denomination}-${hex62(note.nullifier)}${hex62(note.secret)}`;
  return `${body}-${checksum(body)}`;
}

function invalid(reason: string, message: string, info: Record<string, unknown> = {}): PetraError {
  return new PetraError("NOTE_INVALID", `note: ${message}`, { reason, ...info });
}

export function parseNote(text: string): MixerNote {
  if (typeof text !== "string") throw invalid("type", "must be a string");
  const parts = text.trim().split("-");
  // petra, mixer, v1, chainId, denomination, payload, checksum
  if (parts.length !== 7 || `${parts[0]}-${parts[1]}` !== PREFIX) {
    throw invalid(
      "format",
      `not a PETra mixer note (expected ${PREFIX}-${VERSION}-<chainId>-<denomination>-<payload>-<checksum>)`,
    );
  }
  const [, , version, chainIdText, denominationText, payload, sum] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (version !== VERSION) throw invalid("version", `unsupported version "${version}" (this code reads ${VERSION})`);
  if (!/^[1-9][0-9]*$/.test(chainIdText)) throw invalid("chainId", "chain id must be a positive decimal integer");
  if (!/^[1-9][0-9]*$/.test(denominationText))
    throw invalid("denomination", "denomination must be a positive decimal integer");
  if (!/^[0-9a-f]+$/.test(payload) || payload.length !== 2 * HEX_PER_VALUE) {
    throw invalid(
      "payload",
      `payload must be ${2 * HEX_PER_VALUE} lowercase hex digits, got ${payload.length} characters`,
    );
  }
  if (!/^[0-9a-f]{8}$/.test(sum)) throw invalid("checksum", "checksum must be 8 lowercase hex digits");
  const body = parts.slice(0, 6).join("-");
  if (checksum(body) !== sum) throw invalid("checksum", "checksum does not match: the note was altered or mistyped");
  const denomination = BigInt(denominationText);
  if (!ZK.mixer.denominations.includes(denomination)) {
    throw invalid("denomination", `denomination ${denomination} is not one of ${ZK.mixer.denominations.join(", ")}`);
  }
  return {
    chainId: BigInt(chainIdText),
    denomination,
    nullifier: BigInt(`0x${payload.slice(0, HEX_PER_VALUE)}`),
    secret: BigInt(`0x${payload.slice(HEX_PER_VALUE)}`),
  };
}
