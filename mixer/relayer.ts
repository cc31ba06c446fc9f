/**
 * The gas relayer: an HTTP JSON service on loopback (node:http) that submits mixer and allowance
 * withdrawals from its own funded account, so that a fresh pseudonym never needs ether from a
 * linkable address to receive its money and energy. Protocol: mixer/relayer-protocol.ts.
 *
 * Each request is checked before anything is signed, cheapest first: its shape, that the pool or
 * vault is one this relayer serves, that the proof binds this relayer, that the fee covers the
 * relayer's minimum; then by eth_call that each nullifier is unspent and each root known; then the
 * Groth16 proofs against the verification keys (snarkjs, through mixer/prover.ts); then a gas
 * estimate, which runs the contract itself. Only then are the transactions signed and broadcast:
 * the mixer withdrawal that pays the relayer first, then the allowance withdrawal it pays for,
 * then the gas drop, all in one go (consecutive nonces), so they usually land in one block.
 *
 * How the relayer is paid (the circuits bind relayer and fee in the mixer withdrawal only):
 * - a mixer withdrawal pays `fee` money units to the relayer and the rest to the recipient;
 * - an allowance withdrawal carries no fee of its own, so it must come with a mixer withdrawal in
 *   the same request whose fee covers both (fees.mixer + fees.allowance); a producer, who needs
 *   no money, spends a note of the smallest denomination on it and keeps the change;
 * - a gas drop (`gasDropWei` of ether to the recipient, once per address) costs fees.gasDrop more.
 * Fees are in the market's money units and gas is paid in ether: the relayer's exchange rate is
 * its own business, here a fixed minimum per part. The gas drop is not bound by the proof: the
 * household trusts the relayer to send it, as it trusts it to relay at all.
 *
 * A dead JSON-RPC node answers 503 RPC_UNAVAILABLE; every refusal names its reason and the
 * offending field; nothing a client sends stops the server.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import {
  getAddress,
  isError as isEthersError,
  type Provider,
  type TransactionReceipt,
  type TransactionRequest,
  Wallet,
} from "ethers";
import { check, PetraError, revertDataOf } from "../common/errors";
import { AllowanceVault__factory, Mixer__factory } from "../typechain-types";
import { Prover } from "./prover";
import { type AllowanceWithdrawalPublic, type MixerWithdrawalPublic, withdrawalPublicSignals } from "./public-signals";
import {
  allowancePublicFromWire,
  allowanceWithdrawArgs,
  mixerPublicFromWire,
  mixerWithdrawArgs,
  type ParsedRelayRequest,
  type RelayedTransaction,
  type RelayerErrorCode,
  RelayerRefusal,
  type RelayerStatus,
  type RelayResult,
  relayRequestSchema,
} from "./relayer-protocol";
import type { Groth16Proof } from "./snarkjs";

export interface RelayerFees {
  /** Money units per mixer withdrawal. */
  mixer: bigint;
  /** Money units per allowance withdrawal relayed along. */
  allowance: bigint;
  /** Money units for a gas drop. */
  gasDrop: bigint;
}

export const DEFAULT_RELAYER_FEES: Readonly<RelayerFees> = Object.freeze({ mixer: 10n, allowance: 10n, gasDrop: 10n });

export interface RelayerOptions {
  /** Any ethers provider: a JSON-RPC node in live mode, the in-process Hardhat chain in tests. */
  provider: Provider;
  /** The relayer's own funded account. Only this relayer may send from it while it runs. */
  privateKey: string;
  /** Mixer pools it relays for. */
  pools: readonly string[];
  /** Allowance vaults it relays for. */
  vaults: readonly string[];
  /** Minimum fees. Default DEFAULT_RELAYER_FEES. */
  fees?: Partial<RelayerFees>;
  /** Ether per gas drop, wei; 0 turns gas drops off. Default 0. */
  gasDropWei?: bigint;
  /** A warm prover to verify with; one of its own otherwise (closed by stop()). */
  prover?: Prover;
  /** Interface to bind. Default 127.0.0.1: loopback only. */
  host?: string;
  /** Port; 0 picks a free one. Default 0. */
  port?: number;
  /** Largest request body, bytes. Default 64 KiB (a relay request is about 3 KiB). */
  maxBodyBytes?: number;
  /** Receipt polling period, ms. Default 50. */
  receiptPollMs?: number;
  /** Give up waiting for a receipt after this long, ms. Default 120 000. */
  receiptTimeoutMs?: number;
  /** One line per answered request, for logs. Default: none. */
  onRequest?: (event: RelayerRequestEvent) => void;
}

export interface RelayerRequestEvent {
  method: string;
  path: string;
  status: number;
  code: RelayerErrorCode | "OK";
  ms: number;
  message?: string;
}

export interface RelayerStats {
  relayed: number;
  refused: Partial<Record<RelayerErrorCode, number>>;
  /** Wei the relayer paid for gas, over every transaction it sent (gas drops' value excluded). */
  gasPaidWei: bigint;
  /** Money units earned in fees. */
  feesEarned: bigint;
}

interface Pool {
  address: string;
  denomination: bigint;
}

interface Vault {
  address: string;
  direction: 1 | -1;
}

export class Relayer {
  readonly address: string;
  readonly #provider: Provider;
  readonly #wallet: Wallet;
  readonly #fees: RelayerFees;
  readonly #gasDropWei: bigint;
  readonly #poolAddresses: string[];
  readonly #vaultAddresses: string[];
  readonly #ownProver: boolean;
  readonly #prover: Prover;
  readonly #o: Required<Pick<RelayerOptions, "host" | "port" | "maxBodyBytes" | "receiptPollMs" | "receiptTimeoutMs">>;
  readonly #onRequest?: (event: RelayerRequestEvent) => void;
  readonly #pools = new Map<string, Pool>();
  readonly #vaults = new Map<string, Vault>();
  /** Nullifier hashes of requests between their checks and their receipts. */
  readonly #inFlight = new Set<string>();
  readonly #dropped = new Set<string>();
  readonly #stats: RelayerStats = { relayed: 0, refused: {}, gasPaidWei: 0n, feesEarned: 0n };
  #chainId = 0n;
  #server: http.Server | undefined;
  #url: string | undefined;
  #nextNonce: number | undefined;
  #sendQueue: Promise<unknown> = Promise.resolve();

  constructor(opts: RelayerOptions) {
    check(opts.provider !== undefined, "provider", "is required");
    check(/^(0x)?[0-9a-fA-F]{64}$/.test(opts.privateKey ?? ""), "privateKey", "must be 32 bytes of hex");
    check(Array.isArray(opts.pools), "pools", "must be an array of mixer addresses");
    check(Array.isArray(opts.vaults), "vaults", "must be an array of vault addresses");
    check(opts.pools.length + opts.vaults.length > 0, "pools", "a relayer needs at least one pool or vault");
    const fees = { ...DEFAULT_RELAYER_FEES, ...opts.fees };
    for (const [k, v] of Object.entries(fees)) check(typeof v === "bigint" && v >= 0n, `fees.${k}`, "must be >= 0n");
    const gasDropWei = opts.gasDropWei ?? 0n;
    check(typeof gasDropWei === "bigint" && gasDropWei >= 0n, "gasDropWei", "must be a bigint >= 0");
    const port = opts.port ?? 0;
    check(Number.isInteger(port) && port >= 0 && port < 65536, "port", `must be a port number, got ${port}`);
    this.#provider = opts.provider;
    this.#wallet = new Wallet(opts.privateKey, opts.provider);
    this.address = this.#wallet.address;
    this.#fees = fees;
    this.#gasDropWei = gasDropWei;
    this.#poolAddresses = opts.pools.map((a) => getAddress(a));
    this.#vaultAddresses = opts.vaults.map((a) => getAddress(a));
    this.#ownProver = opts.prover === undefined;
    this.#prover = opts.prover ?? new Prover();
    this.#o = {
      host: opts.host ?? "127.0.0.1",
      port,
      maxBodyBytes: opts.maxBodyBytes ?? 64 * 1024,
      receiptPollMs: opts.receiptPollMs ?? 50,
      receiptTimeoutMs: opts.receiptTimeoutMs ?? 120_000,
    };
    this.#onRequest = opts.onRequest;
  }

  /** Base URL once started, e.g. http://127.0.0.1:41234 */
  get url(): string {
    if (this.#url === undefined) throw new PetraError("INVALID_ARGUMENT", "url: the relayer is not started");
    return this.#url;
  }

  get stats(): RelayerStats {
    return { ...this.#stats, refused: { ...this.#stats.refused } };
  }

  status(): RelayerStatus {
    return {
      ok: true,
      relayer: this.address,
      chainId: this.#chainId.toString(),
      pools: [...this.#pools.values()].map((p) => ({ address: p.address, denomination: p.denomination.toString() })),
      vaults: [...this.#vaults.values()].map((v) => ({ address: v.address, direction: v.direction })),
      fees: {
        mixer: this.#fees.mixer.toString(),
        allowance: this.#fees.allowance.toString(),
        gasDrop: this.#fees.gasDrop.toString(),
      },
      gasDropWei: this.#gasDropWei.toString(),
    };
  }

  /** Reads what it serves from the chain, warms the verifier, binds. Throws RPC_UNAVAILABLE without a node. */
  async start(): Promise<string> {
    if (this.#url) return this.#url;
    try {
      this.#chainId = (await this.#provider.getNetwork()).chainId;
      for (const address of this.#poolAddresses) {
        const denomination = await Mixer__factory.connect(address, this.#provider).denomination();
        this.#pools.set(address, { address, denomination });
      }
      for (const address of this.#vaultAddresses) {
        const direction = Number(await AllowanceVault__factory.connect(address, this.#provider).direction());
        this.#vaults.set(address, { address, direction: direction === 1 ? 1 : -1 });
      }
    } catch (e) {
      throw new PetraError(
        "RPC_UNAVAILABLE",
        `relayer: cannot read its pools and vaults from the chain: ${short(e)}`,
        {},
        { cause: e },
      );
    }
    await this.#prover.warm("mixer-withdraw");
    if (this.#vaults.size > 0) await this.#prover.warm("allowance-withdraw");
    const server = http.createServer((req, res) => void this.#serve(req, res));
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#o.port, this.#o.host, () => resolve());
    });
    this.#server = server;
    const { port } = server.address() as AddressInfo;
    const host = this.#o.host.includes(":") ? `[${this.#o.host}]` : this.#o.host;
    this.#url = `http://${host}:${port}`;
    return this.#url;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.#url = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
    if (this.#ownProver) await this.#prover.close();
  }

  // ------------------------------------------------------------------ HTTP

  async #serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const t0 = performance.now();
    const path = (req.url ?? "/").split("?")[0] as string;
    let status = 200;
    let body: unknown;
    let code: RelayerErrorCode | "OK" = "OK";
    try {
      if (path === "/v1/status") {
        if (req.method !== "GET") throw new RelayerRefusal("METHOD_NOT_ALLOWED", "use GET for /v1/status");
        body = this.status();
      } else if (path === "/v1/relay") {
        if (req.method !== "POST") throw new RelayerRefusal("METHOD_NOT_ALLOWED", "use POST for /v1/relay");
        const text = await readBody(req, this.#o.maxBodyBytes);
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch (e) {
          throw new RelayerRefusal("MALFORMED_JSON", `the body is not JSON: ${(e as Error).message}`);
        }
        body = await this.relay(json);
      } else {
        throw new RelayerRefusal("NOT_FOUND", `no route ${path}; try GET /v1/status or POST /v1/relay`);
      }
    } catch (e) {
      const refusal = e instanceof RelayerRefusal ? e : new RelayerRefusal("INTERNAL_ERROR", short(e));
      status = refusal.httpStatus;
      code = refusal.code;
      body = refusal.body();
      this.#stats.refused[code] = (this.#stats.refused[code] ?? 0) + 1;
      // An unread body would keep the connection in a bad state for the next request.
      if (!req.complete) req.resume();
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
    this.#onRequest?.({
      method: req.method ?? "?",
      path,
      status,
      code,
      ms: performance.now() - t0,
      ...(code === "OK" ? {} : { message: (body as { error: { message: string } }).error.message }),
    });
  }

  // ------------------------------------------------------------------ relaying

  /** Checks and submits one request (the parsed JSON body). Throws RelayerRefusal. */
  async relay(json: unknown): Promise<RelayResult> {
    const parsed = relayRequestSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const fieldPath = issue && issue.path.length > 0 ? issue.path.join(".") : "(root)";
      throw new RelayerRefusal("INVALID_REQUEST", `${fieldPath}: ${issue?.message ?? "invalid"}`, fieldPath);
    }
    const r: ParsedRelayRequest = parsed.data;
    const pool = this.#pools.get(getAddress(r.mixer.pool));
    if (!pool)
      throw new RelayerRefusal("UNKNOWN_POOL", `${r.mixer.pool} is not a mixer pool this relayer serves`, "mixer.pool");
    const mixer = mixerPublicFromWire(r.mixer);
    let vault: Vault | undefined;
    let allowance: AllowanceWithdrawalPublic | undefined;
    if (r.allowance) {
      vault = this.#vaults.get(getAddress(r.allowance.vault));
      if (!vault) {
        throw new RelayerRefusal(
          "UNKNOWN_VAULT",
          `${r.allowance.vault} is not an allowance vault this relayer serves`,
          "allowance.vault",
        );
      }
      allowance = allowancePublicFromWire(r.allowance);
      if (allowance.powerW === 0n || allowance.powerW >= 1n << 63n) {
        throw new RelayerRefusal("INVALID_REQUEST", "powerW must be in [1, 2^63)", "allowance.powerW");
      }
    }
    if (mixer.relayer !== this.address) {
      throw new RelayerRefusal(
        "WRONG_RELAYER",
        `the proof pays relayer ${mixer.relayer}; this relayer is ${this.address}`,
        "mixer.relayer",
      );
    }
    if (r.gasDrop && this.#gasDropWei === 0n) {
      throw new RelayerRefusal("INVALID_REQUEST", "this relayer does not do gas drops", "gasDrop");
    }
    const nullifiers = [`m:${pool.address}:${mixer.nullifierHash}`];
    if (allowance && vault) nullifiers.push(`a:${vault.address}:${allowance.nullifierHash}`);
    for (const n of nullifiers) {
      if (this.#inFlight.has(n)) {
        const fieldPath = n.startsWith("m:") ? "mixer.nullifierHash" : "allowance.nullifierHash";
        throw new RelayerRefusal("NULLIFIER_SPENT", "this nullifier is being relayed right now", fieldPath);
      }
    }

    // Reads: a gas drop is only owed to an address without ether.
    const drop = r.gasDrop && (await this.#read(() => this.#needsGasDrop(mixer.recipient)));
    const minFee = this.#fees.mixer + (allowance ? this.#fees.allowance : 0n) + (drop ? this.#fees.gasDrop : 0n);
    if (mixer.fee < minFee) {
      throw new RelayerRefusal(
        "FEE_TOO_LOW",
        `fee ${mixer.fee} is below this relayer's minimum ${minFee} (mixer ${this.#fees.mixer}${allowance ? ` + allowance ${this.#fees.allowance}` : ""}${drop ? ` + gas drop ${this.#fees.gasDrop}` : ""})`,
        "mixer.fee",
      );
    }
    if (mixer.fee > pool.denomination) {
      throw new RelayerRefusal(
        "FEE_TOO_HIGH",
        `fee ${mixer.fee} exceeds the pool's denomination ${pool.denomination}`,
        "mixer.fee",
      );
    }
    const mixerContract = Mixer__factory.connect(pool.address, this.#wallet);
    await this.#read(async () => {
      if (await mixerContract.nullifierSpent(mixer.nullifierHash)) {
        throw new RelayerRefusal(
          "NULLIFIER_SPENT",
          `nullifier ${mixer.nullifierHash} is already spent`,
          "mixer.nullifierHash",
        );
      }
      if (!(await mixerContract.isKnownRoot(mixer.root))) {
        throw new RelayerRefusal(
          "UNKNOWN_ROOT",
          `root ${mixer.root} is not one of the pool's recent roots`,
          "mixer.root",
        );
      }
    });
    const vaultContract = vault && AllowanceVault__factory.connect(vault.address, this.#wallet);
    if (vaultContract && allowance) {
      await this.#read(async () => {
        if (await vaultContract.nullifierSpent(allowance.nullifierHash)) {
          throw new RelayerRefusal(
            "NULLIFIER_SPENT",
            `allowance nullifier ${allowance.nullifierHash} is already spent`,
            "allowance.nullifierHash",
          );
        }
        if (!(await vaultContract.isKnownRoot(allowance.root))) {
          throw new RelayerRefusal(
            "UNKNOWN_ROOT",
            `root ${allowance.root} is not one of the vault's recent roots`,
            "allowance.root",
          );
        }
      });
    }
    await this.#verify(
      "mixer-withdraw",
      withdrawalPublicSignals("mixer-withdraw", mixer),
      r.mixer.proof,
      "mixer.proof",
    );
    if (allowance && r.allowance) {
      await this.#verify(
        "allowance-withdraw",
        withdrawalPublicSignals("allowance-withdraw", allowance),
        r.allowance.proof,
        "allowance.proof",
      );
    }

    // Checked: claim the nullifiers until the receipts are in (or the request fails).
    for (const n of nullifiers) {
      if (this.#inFlight.has(n))
        throw new RelayerRefusal("NULLIFIER_SPENT", "this nullifier is being relayed right now");
    }
    for (const n of nullifiers) this.#inFlight.add(n);
    try {
      return await this.#submit(pool, mixer, r.mixer.proof, vault, allowance, r.allowance?.proof, drop);
    } finally {
      for (const n of nullifiers) this.#inFlight.delete(n);
    }
  }

  async #needsGasDrop(recipient: string): Promise<boolean> {
    if (this.#dropped.has(recipient)) return false;
    return (await this.#provider.getBalance(recipient)) < this.#gasDropWei / 2n;
  }

  async #verify(
    circuit: "mixer-withdraw" | "allowance-withdraw",
    signals: bigint[],
    proof: Groth16Proof,
    fieldPath: string,
  ): Promise<void> {
    let ok = false;
    try {
      ok = await this.#prover.verify(circuit, signals, proof);
    } catch {
      // snarkjs throws on points that are not on the curve: as invalid as a wrong proof.
      ok = false;
    }
    if (!ok) {
      throw new RelayerRefusal(
        "PROOF_INVALID",
        `${circuit}: the proof does not verify against the request's public values`,
        fieldPath,
      );
    }
  }

  /** Runs chain reads; anything but a refusal or a revert means the node is not answering. */
  async #read<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof RelayerRefusal) throw e;
      if (isEthersError(e, "CALL_EXCEPTION")) throw new RelayerRefusal("REVERTED", `a read reverted: ${short(e)}`);
      throw new RelayerRefusal("RPC_UNAVAILABLE", `the JSON-RPC node did not answer: ${short(e)}`);
    }
  }

  async #submit(
    pool: Pool,
    mixer: MixerWithdrawalPublic,
    mixerProof: Groth16Proof,
    vault: Vault | undefined,
    allowance: AllowanceWithdrawalPublic | undefined,
    allowanceProof: Groth16Proof | undefined,
    drop: boolean,
  ): Promise<RelayResult> {
    const planned: { kind: RelayedTransaction["kind"]; tx: TransactionRequest; fieldPath: string }[] = [];
    const mixerIface = Mixer__factory.createInterface();
    planned.push({
      kind: "mixer",
      fieldPath: "mixer",
      tx: { to: pool.address, data: mixerIface.encodeFunctionData("withdraw", mixerWithdrawArgs(mixerProof, mixer)) },
    });
    if (vault && allowance && allowanceProof) {
      const vaultIface = AllowanceVault__factory.createInterface();
      planned.push({
        kind: "allowance",
        fieldPath: "allowance",
        tx: {
          to: vault.address,
          data: vaultIface.encodeFunctionData("withdraw", allowanceWithdrawArgs(allowanceProof, allowance)),
        },
      });
    }
    if (drop) {
      planned.push({
        kind: "gas-drop",
        fieldPath: "gasDrop",
        tx: { to: mixer.recipient, value: this.#gasDropWei, gasLimit: 21_000n },
      });
    }
    // The last check runs the contracts themselves: a revert here costs the relayer nothing.
    for (const p of planned) {
      if (p.tx.gasLimit !== undefined) continue;
      const estimate = await this.#simulate(p.tx, p.fieldPath);
      p.tx.gasLimit = (estimate * 6n) / 5n + 10_000n;
    }
    const feeData = await this.#read(() => this.#provider.getFeeData());
    const feeFields =
      feeData.maxFeePerGas !== null
        ? { type: 2, maxFeePerGas: feeData.maxFeePerGas, maxPriorityFeePerGas: feeData.maxPriorityFeePerGas ?? 0n }
        : { type: 0, gasPrice: feeData.gasPrice ?? 0n };
    const hashes = await this.#broadcastAll(planned.map((p) => ({ ...p.tx, ...feeFields })));
    if (drop) this.#dropped.add(mixer.recipient);

    const receipts: TransactionReceipt[] = [];
    for (const hash of hashes) receipts.push(await this.#receipt(hash));
    const transactions: RelayedTransaction[] = receipts.map((rc, i) => ({
      kind: (planned[i] as (typeof planned)[number]).kind,
      hash: rc.hash,
      block: rc.blockNumber,
      gasUsed: rc.gasUsed.toString(),
      effectiveGasPrice: (rc.gasPrice ?? 0n).toString(),
    }));
    for (const rc of receipts) this.#stats.gasPaidWei += rc.gasUsed * (rc.gasPrice ?? 0n);
    const failed = receipts.findIndex((rc) => rc.status !== 1);
    if (failed >= 0) {
      // Only a race can get here (another relayer spent the nullifier between our checks and the block).
      throw new RelayerRefusal(
        "REVERTED",
        `${planned[failed]?.kind} transaction ${receipts[failed]?.hash} reverted on chain`,
        planned[failed]?.fieldPath,
      );
    }
    this.#stats.relayed++;
    this.#stats.feesEarned += mixer.fee;
    let assetId: string | undefined;
    const vaultIface = AllowanceVault__factory.createInterface();
    for (const rc of receipts) {
      for (const log of rc.logs) {
        if (!vault || getAddress(log.address) !== vault.address) continue;
        const parsed = vaultIface.parseLog({ topics: [...log.topics], data: log.data });
        if (parsed?.name === "AllowanceSpent") assetId = String(parsed.args.assetID);
      }
    }
    return {
      ok: true,
      relayer: this.address,
      transactions,
      ...(assetId !== undefined ? { assetId } : {}),
      fee: mixer.fee.toString(),
      gasDropWei: drop ? this.#gasDropWei.toString() : "0",
    };
  }

  async #simulate(tx: TransactionRequest, fieldPath: string): Promise<bigint> {
    try {
      return await this.#provider.estimateGas({ ...tx, from: this.address });
    } catch (e) {
      const reason = revertName(e);
      if (reason === undefined)
        throw new RelayerRefusal("RPC_UNAVAILABLE", `the JSON-RPC node did not answer: ${short(e)}`);
      if (/NullifierSpent/.test(reason))
        throw new RelayerRefusal("NULLIFIER_SPENT", reason, `${fieldPath}.nullifierHash`);
      if (/UnknownRoot/.test(reason)) throw new RelayerRefusal("UNKNOWN_ROOT", reason, `${fieldPath}.root`);
      if (/InvalidProof/.test(reason)) throw new RelayerRefusal("PROOF_INVALID", reason, `${fieldPath}.proof`);
      throw new RelayerRefusal("REVERTED", `the contract refuses it: ${reason}`, fieldPath);
    }
  }

  /** Signs and broadcasts with consecutive nonces, one request at a time. */
  #broadcastAll(txs: TransactionRequest[]): Promise<string[]> {
    const run = async (): Promise<string[]> => {
      const hashes: string[] = [];
      try {
        if (this.#nextNonce === undefined) {
          this.#nextNonce = await this.#provider.getTransactionCount(this.address, "pending");
        }
        for (const tx of txs) {
          const signed = await this.#wallet.signTransaction({
            ...tx,
            chainId: this.#chainId,
            nonce: this.#nextNonce,
          });
          const response = await this.#provider.broadcastTransaction(signed);
          this.#nextNonce++;
          hashes.push(response.hash);
        }
        return hashes;
      } catch (e) {
        this.#nextNonce = undefined;
        if (hashes.length > 0) {
          // Part of the request is on its way: report what was sent rather than pretend nothing was.
          throw new RelayerRefusal(
            "RPC_UNAVAILABLE",
            `sent ${hashes.join(", ")} but the node refused the rest: ${short(e)}`,
          );
        }
        throw new RelayerRefusal("RPC_UNAVAILABLE", `the JSON-RPC node refused the transaction: ${short(e)}`);
      }
    };
    const result = this.#sendQueue.then(run, run);
    this.#sendQueue = result.catch(() => undefined);
    return result;
  }

  async #receipt(hash: string): Promise<TransactionReceipt> {
    const deadline = performance.now() + this.#o.receiptTimeoutMs;
    for (;;) {
      const rc = await this.#read(() => this.#provider.getTransactionReceipt(hash));
      if (rc !== null) return rc;
      if (performance.now() > deadline) {
        throw new RelayerRefusal(
          "INTERNAL_ERROR",
          `transaction ${hash} not mined within ${this.#o.receiptTimeoutMs} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, this.#o.receiptPollMs));
    }
  }
}

function readBody(req: http.IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > maxBytes) {
      reject(new RelayerRefusal("PAYLOAD_TOO_LARGE", `body of ${declared} bytes; limit ${maxBytes}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        reject(new RelayerRefusal("PAYLOAD_TOO_LARGE", `body over ${maxBytes} bytes`));
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const IFACES = [Mixer__factory.createInterface(), AllowanceVault__factory.createInterface()];

/** The contract's custom error with its arguments, or undefined when `e` is not a revert. */
function revertName(e: unknown): string | undefined {
  const [hex] = revertDataOf(e);
  if (hex) {
    for (const iface of IFACES) {
      try {
        const parsed = iface.parseError(hex);
        if (parsed) return `${parsed.name}(${parsed.args.map(String).join(", ")})`;
      } catch {
        // not this contract's error
      }
    }
    return `reverted with data ${hex.slice(0, 74)}`;
  }
  if (isEthersError(e, "CALL_EXCEPTION")) return (e as { shortMessage?: string }).shortMessage ?? "reverted";
  const message = String((e as Error)?.message ?? "");
  if (/revert/i.test(message)) return message.split("\n")[0];
  return undefined;
}

function short(e: unknown): string {
  const err = e as { shortMessage?: string; message?: string; code?: string };
  return (
    String(err?.shortMessage ?? err?.message ?? err?.code ?? e)
      .split("\n")[0]
      ?.slice(0, 300) ?? "error"
  );
}
