import { JsonRpcProvider, type Log, ZeroAddress } from "ethers";
import { decodeMarketLog } from "../agents/market-log";
import { PetraError } from "../common/errors";
import { AllowanceVault__factory, EnergyMarket__factory, Mixer__factory } from "../typechain-types";
import { type Dataset, type EventRecord, emptyDataset, sortDataset, type TxRecord } from "./dataset";
import { toMarketEvent } from "./market-replay";

export interface RpcDatasetOptions {
  /** JSON-RPC endpoint of any Ethereum node (hardhat node, anvil, geth, a testnet). */
  rpcUrl: string;
  /** The EnergyMarket contract. */
  market: string;
  /** The Mixer pools (one per denomination), when the run used them. */
  mixers?: string[];
  /** The AllowanceVaults (one per direction), when the run used them. */
  vaults?: string[];
  /** First block to read; default 0. */
  fromBlock?: number;
  /** Last block to read; default the latest. */
  toBlock?: number;
  /** Blocks per eth_getLogs call; nodes cap log ranges. Default 2,000. */
  logChunkBlocks?: number;
  /** Requests in flight at once while reading blocks and receipts. Default 8. */
  concurrency?: number;
}

/**
 * Reads the ledger of a PETra market straight from a JSON-RPC node: every transaction in the block
 * range (plain value transfers too: they are the gas-funding graph) and every market event. This is
 * exactly what any chain observer can do; it needs no access to the agents or the run directory.
 */
export async function readDatasetFromRpc(opts: RpcDatasetOptions): Promise<Dataset> {
  const provider = new JsonRpcProvider(opts.rpcUrl, undefined, { batchMaxCount: 1 });
  try {
    return await read(provider, opts);
  } catch (e) {
    if (e instanceof PetraError) throw e;
    const code = (e as { code?: string }).code;
    if (code === "ECONNREFUSED" || code === "NETWORK_ERROR" || /ECONNREFUSED|fetch failed/.test(String(e))) {
      throw new PetraError(
        "RPC_UNAVAILABLE",
        `cannot reach the JSON-RPC node at ${opts.rpcUrl}`,
        { rpcUrl: opts.rpcUrl },
        { cause: e },
      );
    }
    throw e;
  } finally {
    provider.destroy();
  }
}

/**
 * The same read through a provider the caller owns (e.g. the in-process chain of a simulated
 * run, which has no URL). `rpcUrl` only names the node in errors.
 */
export function readDatasetFromProvider(
  provider: JsonRpcProvider,
  opts: Omit<RpcDatasetOptions, "rpcUrl"> & { rpcUrl?: string },
): Promise<Dataset> {
  return read(provider, { ...opts, rpcUrl: opts.rpcUrl ?? "(in-process chain)" });
}

async function read(provider: JsonRpcProvider, opts: RpcDatasetOptions): Promise<Dataset> {
  const network = await withTimeout(provider.getNetwork(), 10_000, opts.rpcUrl);
  const latest = await provider.getBlockNumber();
  const fromBlock = opts.fromBlock ?? 0;
  const toBlock = opts.toBlock ?? latest;
  if (fromBlock > toBlock) {
    throw new PetraError("INVALID_ARGUMENT", `fromBlock: ${fromBlock} is after toBlock ${toBlock}`, {
      fromBlock,
      toBlock,
    });
  }
  const mixers = opts.mixers ?? [];
  const vaults = opts.vaults ?? [];
  for (const [name, address] of [
    ["market", opts.market],
    ...mixers.map((a) => ["mixer", a] as const),
    ...vaults.map((a) => ["vault", a] as const),
  ] as const) {
    if ((await provider.getCode(address)) === "0x") {
      throw new PetraError("LEDGER_UNREADABLE", `${name}: no contract at ${address} on ${opts.rpcUrl}`, {
        [name]: address,
      });
    }
  }
  const market = EnergyMarket__factory.connect(opts.market, provider);
  const ds = emptyDataset({
    kind: "header",
    version: 1,
    chainId: Number(network.chainId),
    fromBlock,
    toBlock,
    contracts: {
      market: opts.market,
      ...(mixers.length ? { mixers } : {}),
      ...(vaults.length ? { vaults } : {}),
    },
    dso: await market.dso(),
  });

  const timestamps = new Map<number, number>();
  const blockNumbers = Array.from({ length: toBlock - fromBlock + 1 }, (_, i) => fromBlock + i);
  await inParallel(blockNumbers, opts.concurrency ?? 8, async (n) => {
    const block = await provider.getBlock(n, true);
    if (!block) throw new PetraError("LEDGER_UNREADABLE", `block ${n}: the node returned nothing`, { block: n });
    timestamps.set(n, block.timestamp);
    for (const tx of block.prefetchedTransactions) {
      const receipt = await provider.getTransactionReceipt(tx.hash);
      const record: TxRecord = {
        kind: "tx",
        hash: tx.hash,
        from: tx.from,
        to: tx.to,
        valueWei: tx.value,
        gasPriceWei: receipt?.gasPrice ?? tx.gasPrice ?? 0n,
        gasUsed: receipt?.gasUsed ?? 0n,
        blockNumber: n,
        timestamp: block.timestamp,
        nonce: tx.nonce,
        status: receipt?.status ?? 0,
        selector: tx.data.length >= 10 ? tx.data.slice(0, 10) : "0x",
      };
      ds.transactions.push(record);
    }
  });

  const senders = new Map(ds.transactions.map((t) => [t.hash, t.from]));
  const decoders: Array<[EventRecord["contract"], string, (log: Log) => EventRecord["event"] | undefined]> = [
    ["market", opts.market, (log) => toMarketEvent(decodeMarketLog(log))],
  ];
  for (const pool of mixers) {
    const denomination = await Mixer__factory.connect(pool, provider).denomination();
    decoders.push(["mixer", pool, (log) => mixerEvent(log, denomination, senders)]);
  }
  for (const vault of vaults) decoders.push(["vault", vault, vaultEvent]);
  const chunk = opts.logChunkBlocks ?? 2_000;
  for (const [contract, address, decode] of decoders) {
    for (let start = fromBlock; start <= toBlock; start += chunk) {
      const logs: Log[] = await provider.getLogs({
        address,
        fromBlock: start,
        toBlock: Math.min(toBlock, start + chunk - 1),
      });
      for (const log of logs) {
        const event = decode(log);
        if (!event) continue;
        ds.events.push({
          kind: "event",
          contract,
          blockNumber: log.blockNumber,
          logIndex: log.index,
          txHash: log.transactionHash,
          timestamp: timestamps.get(log.blockNumber) ?? 0,
          event,
        });
      }
    }
  }
  sortDataset(ds);
  return ds;
}

const MIXER = Mixer__factory.createInterface();
const VAULT = AllowanceVault__factory.createInterface();
const hex32 = (v: bigint) => `0x${v.toString(16).padStart(64, "0")}`;

function mixerEvent(log: Log, denomination: bigint, senders: Map<string, string>): EventRecord["event"] | undefined {
  const parsed = MIXER.parseLog(log);
  if (parsed?.name === "Deposit") {
    const depositor = senders.get(log.transactionHash) ?? ZeroAddress;
    return { name: "MixerDeposit", depositor, commitment: hex32(parsed.args.commitment), denomination };
  }
  if (parsed?.name === "Withdrawal") {
    return {
      name: "MixerWithdrawal",
      recipient: parsed.args.recipient,
      relayer: parsed.args.relayer,
      nullifierHash: hex32(parsed.args.nullifierHash),
      denomination,
      fee: parsed.args.fee,
    };
  }
  return undefined;
}

function vaultEvent(log: Log): EventRecord["event"] | undefined {
  const parsed = VAULT.parseLog(log);
  if (parsed?.name === "AllowanceIssued") {
    return { name: "AllowanceIssued", commitment: hex32(parsed.args.commitment), leafIndex: parsed.args.leafIndex };
  }
  if (parsed?.name === "AllowanceSpent") {
    return {
      name: "AllowanceSpent",
      nullifierHash: hex32(parsed.args.nullifierHash),
      assetID: parsed.args.assetID,
      newCommitments: (parsed.args.newCommitments as bigint[]).map(hex32),
    };
  }
  return undefined;
}

async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

async function withTimeout<T>(p: Promise<T>, ms: number, rpcUrl: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new PetraError("RPC_UNAVAILABLE", `the JSON-RPC node at ${rpcUrl} did not answer within ${ms} ms`, {
            rpcUrl,
          }),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
