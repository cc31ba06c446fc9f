import { getAddress } from "ethers";
import { check, PetraError } from "../common/errors";
import type { Chain, Clock } from "./interfaces";

/**
 * Who pays the gas of a fresh anonymous address. Both modes are honest about what they leak:
 * - "dso": the DSO funds every address it mints to (it knows the household behind it anyway in
 *   PETra): the prosumer sets `fundGas` on its withdrawal and the DSO sends the ether (agents/dso.ts);
 *   an outside observer sees DSO -> address transfers, as it sees the mints.
 * - "household-main": the household funds each pseudonym from its own main address: naive, and
 *   links every pseudonym of a household in one hop of the transfer graph.
 * A relayer mode, paid from mixer withdrawals, comes with the mixer.
 */
export type GasFundingMode = "dso" | "household-main";
export const GAS_FUNDING_MODES = ["dso", "household-main"] as const;

export interface GasFunderOptions {
  chain: Chain;
  /** Private key of the paying account (the DSO's gas account or the household's main address). */
  funderPrivateKey: string;
  /** Ether sent to each new address, in wei. */
  amountWei: bigint;
}

/** Sends `amountWei` once to each address it is asked to fund, and waits until the transfer is mined. */
export class GasFunder {
  readonly #chain: Chain;
  readonly #signer;
  readonly #amountWei: bigint;
  readonly #funded = new Map<string, Promise<void>>();

  constructor(opts: GasFunderOptions) {
    check(
      typeof opts.amountWei === "bigint" && opts.amountWei > 0n,
      "amountWei",
      `must be a positive bigint, got ${opts.amountWei}`,
    );
    this.#chain = opts.chain;
    this.#signer = opts.chain.signer(opts.funderPrivateKey);
    this.#amountWei = opts.amountWei;
  }

  get funderAddress(): Promise<string> {
    return this.#signer.getAddress();
  }

  fund(address: string): Promise<void> {
    const key = getAddress(address);
    let done = this.#funded.get(key);
    if (!done) {
      done = (async () => {
        // A plain transfer to a fresh address: 21,000 gas, no estimate (a round trip, and a node's
        // estimate on its pending state executes the whole mempool).
        const tx = await this.#signer.sendTransaction({ to: key, value: this.#amountWei, gasLimit: 21_000n });
        const receipt = await this.#chain.waitForReceipt(tx.hash);
        if (receipt?.status !== 1) {
          throw new PetraError("TX_FAILED", `gas funding of ${key} failed`, { address: key, txHash: tx.hash });
        }
      })();
      // A failed funding may be retried by the next caller.
      done.catch(() => this.#funded.delete(key));
      this.#funded.set(key, done);
    }
    return done;
  }
}

/** Waits until `address` holds at least `minWei`, polling every `pollMs`; throws after `timeoutMs`. */
export async function waitForGas(opts: {
  chain: Chain;
  clock: Clock;
  address: string;
  minWei: bigint;
  pollMs: number;
  timeoutMs: number;
}): Promise<void> {
  const deadline = opts.clock.now() + opts.timeoutMs;
  for (;;) {
    if ((await opts.chain.provider.getBalance(opts.address)) >= opts.minWei) return;
    if (opts.clock.now() >= deadline) {
      throw new PetraError("TX_FAILED", `no gas arrived at ${opts.address} within ${opts.timeoutMs} ms`, {
        address: opts.address,
      });
    }
    await opts.clock.sleep(opts.pollMs);
  }
}
