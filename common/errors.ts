/**
 * One error type for the whole lab. Codes form a closed union so that callers can branch on them
 * exhaustively and tests can match them; add a code here when a new failure needs its own handling.
 */
export type PetraErrorCode =
  | "INVALID_ARGUMENT"
  | "INVALID_SCENARIO"
  | "INVALID_MESSAGE"
  | "RPC_UNAVAILABLE"
  | "TX_FAILED"
  | "DSO_REFUSED"
  | "PROCESS_FAILED"
  | "TOR_NOT_INSTALLED"
  | "TOR_BOOTSTRAP_TIMEOUT"
  | "TOR_CONTROL_FAILED"
  | "PROOF_INVALID"
  | "NOTE_INVALID"
  | "CIRCUIT_BUILD_FAILED"
  | "LEDGER_UNREADABLE"
  | "DSO_UNAVAILABLE"
  | "ACCOUNT_BOOK_MISMATCH"
  | "WITNESS_INVALID";

export class PetraError extends Error {
  override readonly name = "PetraError";
  constructor(
    readonly code: PetraErrorCode,
    message: string,
    readonly info: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isError(e: unknown, code?: PetraErrorCode): e is PetraError {
  return e instanceof PetraError && (code === undefined || e.code === code);
}

/** Throws INVALID_ARGUMENT naming the parameter when `ok` is false. */
export function check(ok: boolean, parameter: string, message: string, info: Record<string, unknown> = {}): asserts ok {
  if (!ok) throw new PetraError("INVALID_ARGUMENT", `${parameter}: ${message}`, { parameter, ...info });
}

/**
 * The revert data a failed call carries, as 0x-hex with at least a 4-byte selector, in the places
 * nodes put it (hardhat: error.data.data or error.data; anvil: error.data), first found first.
 */
export function revertDataOf(e: unknown): string[] {
  const err = e as { data?: unknown; error?: { data?: unknown }; info?: { error?: { data?: unknown } } };
  const out: string[] = [];
  for (const d of [err?.data, err?.error?.data, err?.info?.error?.data]) {
    const hex =
      typeof d === "string"
        ? d
        : typeof (d as { data?: unknown })?.data === "string"
          ? (d as { data: string }).data
          : undefined;
    if (hex && /^0x[0-9a-fA-F]{8}/.test(hex)) out.push(hex);
  }
  return out;
}
