import { JsonRpcProvider, Network } from "ethers";
import type { Eip1193, SimChainSpec } from "./sim-node";

/** EDR's (undocumented, internal) bound on the block states it caches; its default is 100,000. */
export const EDR_CACHED_STATES_VAR = "__EDR_MAX_CACHED_STATES";
/** Block states a simulated run's chain caches (set the variable yourself to override). */
export const SIM_EDR_CACHED_STATES = 32;
/**
 * EDR's allocator settings for a simulated run (set a variable yourself to override it): no
 * transparent huge pages, and freed memory kept instead of returned to the OS (-1: never).
 */
export const SIM_EDR_ALLOCATOR: Readonly<Record<string, string>> = {
  MIMALLOC_ALLOW_LARGE_OS_PAGES: "0",
  MIMALLOC_PURGE_DELAY: "-1",
};

/**
 * A fresh in-process Hardhat network (EDR) for one simulated run, built from the project's
 * Hardhat config with what a deterministic simulation needs: a fixed genesis date (block
 * timestamps must not depend on the wall clock), automine off, FIFO mempool order, blocks that
 * may share a timestamp (several blocks can fall in one simulated second), a gas limit and
 * balances sized for thousands of households. Needs the Hardhat runtime (the `petra` CLI and
 * `hardhat test` load it).
 */
export async function createSimChainProvider(spec: SimChainSpec): Promise<Eip1193> {
  // EDR keeps the whole state of up to 100,000 recent blocks in an LRU cache, one snapshot per
  // block: a long day grows by the changed trie paths of every block (about 250 KB a block at
  // 60,000 storage slots, measured), and a 1,000-household day ran this machine out of memory.
  // Simulated runs read only the latest state; an older one is recomputed from EDR's per-block
  // diffs if anyone asks. EDR reads the variable when it builds a provider, so it is set first.
  process.env[EDR_CACHED_STATES_VAR] ??= String(SIM_EDR_CACHED_STATES);
  // EDR's allocator (mimalloc) asks the kernel for transparent huge pages and hands freed memory
  // back after 10 ms: every block then faults fresh 2 MB pages in, each zeroed by the kernel
  // (a mint block of 250 assets took 300-400 ms, 100-150 without huge pages; perf showed the
  // kernel zeroing pages for half of EDR's time). A simulated run keeps EDR on small pages and
  // keeps its freed memory: mining time down by ~40% on 1,000 households (bench/sim.json), for a
  // larger peak (the memory EDR once used stays with it). mimalloc reads these variables when
  // EDR's library is loaded, below (Hardhat loads it lazily); if it was loaded already (a test
  // run that used the Hardhat network first), they have no effect and nothing else changes.
  for (const [name, value] of Object.entries(SIM_EDR_ALLOCATOR)) process.env[name] ??= value;
  // Loaded here, not at the top: only simulated runs need the Hardhat runtime.
  const hre = require("hardhat");
  const { createProvider } = require("hardhat/internal/core/providers/construction");
  const base = hre.config.networks.hardhat;
  const hardhat = {
    ...base,
    chainId: spec.chainId,
    initialDate: spec.genesisDate,
    blockGasLimit: spec.blockGasLimit,
    allowBlocksWithSameTimestamp: true,
    loggingEnabled: false,
    mining: { ...base.mining, auto: false, interval: 0, mempool: { order: "fifo" } },
    accounts: {
      mnemonic: spec.mnemonic,
      path: "m/44'/60'/0'/0",
      initialIndex: 0,
      count: spec.accountCount,
      accountsBalance: spec.accountBalanceWei.toString(),
      passphrase: "",
    },
  };
  const config = { ...hre.config, networks: { ...hre.config.networks, hardhat } };
  const provider = (await createProvider(config, "hardhat", hre.artifacts)) as Eip1193;
  const edr = edrHandleOf(provider);
  if (edr === undefined) return provider;
  return {
    request: (args) => provider.request(args),
    requestBatch: (calls) => edrBatch(edr, calls),
  };
}

/** EDR's own provider object: one JSON-RPC request (or batch) in, one JSON reply out. */
interface EdrHandle {
  handleRequest(json: string): Promise<{ data: string | object }>;
}

/**
 * EDR's provider under Hardhat's wrappers, which take one request at a time. Reached through
 * Hardhat's internals (each wrapper keeps the next in `_wrappedProvider` or `_provider`): if a
 * Hardhat release moves it, batches are not offered and the node sends calls one by one.
 */
function edrHandleOf(provider: unknown): EdrHandle | undefined {
  let cur = provider as Record<string, unknown> | undefined;
  for (let depth = 0; cur !== undefined && depth < 16; depth++) {
    const inner = cur._provider as Record<string, unknown> | undefined;
    if (typeof inner?.handleRequest === "function") return inner as unknown as EdrHandle;
    cur = (cur._wrappedProvider ?? inner) as Record<string, unknown> | undefined;
  }
  return undefined;
}

/**
 * Calls answered in one request: EDR runs a batch in order under one lock and replies with every
 * result, or with one error if any call failed (so a batch is for calls that do not fail in
 * practice, such as reading receipts).
 */
async function edrBatch(edr: EdrHandle, calls: { method: string; params: unknown[] }[]): Promise<unknown[]> {
  const body = JSON.stringify(calls.map((c, i) => ({ jsonrpc: "2.0", id: i, method: c.method, params: c.params })));
  const reply = await edr.handleRequest(body);
  const parsed = (typeof reply.data === "string" ? JSON.parse(reply.data) : reply.data) as {
    result?: unknown;
    error?: { code?: number; message?: string; data?: unknown };
  };
  if (parsed.error !== undefined) {
    const e = new Error(`batch of ${calls.length} calls: ${parsed.error.message ?? "unknown error"}`) as Error & {
      code?: number;
      data?: unknown;
    };
    e.code = parsed.error.code;
    e.data = parsed.error.data;
    throw e;
  }
  const results = parsed.result;
  if (!Array.isArray(results) || results.length !== calls.length)
    throw new Error(`batch of ${calls.length} calls: EDR answered ${JSON.stringify(results)?.slice(0, 120)}`);
  return results;
}

/**
 * An ethers provider straight onto an EIP-1193 provider, with no simulated latency and no clock:
 * for reading a finished run's chain (the ledger) from the same process.
 */
export class Eip1193JsonRpcProvider extends JsonRpcProvider {
  readonly #eip: Eip1193;

  constructor(eip: Eip1193, chainId: number) {
    const network = Network.from(chainId);
    super("http://in-process.invalid/", network, { staticNetwork: network, batchMaxCount: 1, cacheTimeout: -1 });
    this.#eip = eip;
  }

  override async send(method: string, params: unknown[] | Record<string, unknown>): Promise<unknown> {
    return this.#eip.request({ method, params: (Array.isArray(params) ? params : [params]) as unknown[] });
  }
}
