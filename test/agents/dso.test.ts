import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { getAddress, Wallet } from "ethers";
import { Dealer } from "zeromq";
import { AccountBook } from "../../agents/account-book";
import { LiveClock } from "../../agents/clock-live";
import { deployEnergyMarket } from "../../agents/deploy-market";
import { Dso, type DsoOptions, mintGasLimit } from "../../agents/dso";
import { DsoClient, type WithdrawResult } from "../../agents/dso-client";
import { decodeEnvelope, publicKeyHex, type SigningKey, sealEnvelope } from "../../agents/envelope";
import { HouseholdRegistry } from "../../agents/household-registry";
import type { Clock } from "../../agents/interfaces";
import type { Message, MessageInput } from "../../agents/messages";
import { isError } from "../../common/errors";
import type { EnergyMarket } from "../../typechain-types";
import { hardhatPrivateKey, OffsetClock, testGrid, testKey } from "../fixtures/dso";
import { expectExactly } from "../fixtures/exactly";

const hre = require("hardhat");

interface World {
  dso: Dso;
  book: AccountBook;
  market: EnergyMarket;
  endpoint: string;
  keys: Record<string, SigningKey>;
  dsoKey: SigningKey;
  errors: unknown[];
  client(householdId: string, clock?: Clock): DsoClient;
  stop(): Promise<void>;
}

const clock = new LiveClock();

async function startWorld(over: Partial<DsoOptions> = {}): Promise<World> {
  const [dsoSigner] = await hre.ethers.getSigners();
  const market = await deployEnergyMarket(dsoSigner);
  const dir = mkdtempSync(join(tmpdir(), "petra-dso-"));
  const grid = testGrid();
  const registry = new HouseholdRegistry(grid.registry);
  const chainId = Number((await hre.ethers.provider.getNetwork()).chainId);
  const marketAddress = await market.getAddress();
  const book = new AccountBook({ path: join(dir, "dso.sqlite"), marketAddress, chainId, synchronous: "NORMAL" });
  const dsoKey = testKey("dso");
  const errors: unknown[] = [];
  const dso = new Dso({
    endpoint: "tcp://127.0.0.1:*",
    registry,
    book,
    provider: hre.ethers.provider,
    wallet: new Wallet(hardhatPrivateKey(0), hre.ethers.provider),
    marketAddress,
    chainId,
    signingKey: dsoKey,
    clock,
    logPollIntervalMs: 50,
    receiptPollIntervalMs: 10,
    fromBlock: await hre.ethers.provider.getBlockNumber(),
    onError: (e) => errors.push(e),
    ...over,
  });
  const endpoint = await dso.start();
  const clients: DsoClient[] = [];
  return {
    dso,
    book,
    market,
    endpoint,
    keys: grid.keys,
    dsoKey,
    errors,
    client: (householdId, c = clock) => {
      const client = new DsoClient({
        endpoint,
        householdId,
        key: grid.keys[householdId] ?? testKey(householdId),
        clock: c,
        dsoPublicKeyHex: publicKeyHex(dsoKey),
        timeoutMs: 5_000,
        attempts: 1,
      });
      clients.push(client);
      return client;
    },
    stop: async () => {
      for (const c of clients) c.close();
      await dso.stop();
      book.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Sends raw frames on a fresh DEALER and returns the decoded answer. */
async function exchange(endpoint: string, frames: Uint8Array[]): Promise<Message> {
  const dealer = new Dealer({ linger: 0, receiveTimeout: 5_000 });
  dealer.connect(endpoint);
  try {
    await dealer.send(frames);
    const [reply] = await dealer.receive();
    const decoded = decodeEnvelope(reply);
    if (!decoded.ok) throw new Error(`unreadable answer: ${decoded.detail}`);
    return decoded.envelope.message;
  } finally {
    dealer.close();
  }
}

async function eventually(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function accepted(r: WithdrawResult) {
  if (r.status !== "accepted") throw new Error(`expected accepted, got ${r.reason}: ${r.message}`);
  return r;
}

/** A distinct, valid anonymous address per index (nobody holds its key: fine for mint-only tests). */
const anon = (i: number) => getAddress(`0x${(0xa0000 + i).toString(16).padStart(40, "0")}`);

describe("Dso # withdrawals", () => {
  let w: World;
  beforeEach(async () => {
    w = await startWorld();
  });
  afterEach(async () => w.stop());

  it("mints the assets and money and answers withdrawalAccepted with the asset IDs", async () => {
    const address = anon(1);
    const r = accepted(
      await w.client("h1").withdraw({
        requestId: "h1-a",
        anonAddress: address,
        assets: [
          { powerW: 5_000, start: 10, end: 11 },
          { powerW: -2_000, start: 12, end: 12 },
        ],
        financial: 500,
      }),
    );
    expect(r.assetIds).to.deep.equal([0n, 1n]);
    expect(r.balance).to.equal(999_500);
    const [owner, powerW, start, end] = await w.market.energyAsset(1);
    expect([owner, powerW, start, end]).to.deep.equal([address, -2_000n, 12n, 12n]);
    expect(await w.market.financialBalance(address)).to.equal(500n);
    expect(w.book.balance("h1")).to.equal(999_500);
  });

  it("answers a re-sent request with the same asset IDs and mints nothing more", async () => {
    const client = w.client("h1");
    const request = {
      requestId: "h1-b",
      anonAddress: anon(2),
      assets: [{ powerW: 1_000, start: 1, end: 1 }],
      financial: 10,
    };
    const first = accepted(await client.withdraw(request));
    const again = accepted(await client.withdraw(request));
    expect(again.assetIds).to.deep.equal(first.assetIds);
    expect(await w.market.assetCount()).to.equal(1n);
    expect(await w.market.financialBalance(request.anonAddress)).to.equal(10n);
    expect(w.book.balance("h1")).to.equal(999_990);
  });

  it("refuses a requestId reused for a different request as REQUEST_CONFLICT", async () => {
    const client = w.client("h1");
    accepted(await client.withdraw({ requestId: "h1-c", anonAddress: anon(3), assets: [], financial: 10 }));
    const r = await client.withdraw({ requestId: "h1-c", anonAddress: anon(3), assets: [], financial: 11 });
    expect(r.status === "failed" && r.reason).to.equal("REQUEST_CONFLICT");
  });

  it("batches concurrent requests from several households into few transactions", async () => {
    const clients = ["h1", "h2", "h3"].map((h) => w.client(h));
    const results = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        (clients[i % 3] as DsoClient).withdraw({
          requestId: `batch-${i}`,
          anonAddress: anon(100 + i),
          assets: [{ powerW: 100, start: i, end: i }],
          financial: 1 + i,
        }),
      ),
    );
    const ids = results.map((r) => accepted(r).assetIds[0]);
    expect(new Set(ids).size).to.equal(24);
    expect(await w.market.assetCount()).to.equal(24n);
    expect(w.dso.stats.batches).to.be.lessThan(24);
    expect(w.dso.stats.mintedRequests).to.equal(24);
  });

  it("refuses an anonymous address that belongs to another household as ADDRESS_TAKEN", async () => {
    const address = anon(4);
    accepted(await w.client("h1").withdraw({ requestId: "x", anonAddress: address, assets: [], financial: 1 }));
    const r = await w.client("h2").withdraw({ requestId: "y", anonAddress: address, assets: [], financial: 1 });
    expect(r.status === "failed" && r.reason).to.equal("ADDRESS_TAKEN");
  });
  it("rejects a malformed request in the client, naming the field, before it is sent", async () => {
    try {
      await w
        .client("h1")
        .withdraw({ requestId: "bad", anonAddress: anon(12), assets: [{ powerW: 0, start: 1, end: 1 }], financial: 0 });
      expect.fail("sent");
    } catch (e) {
      expect(isError(e, "INVALID_ARGUMENT")).to.equal(true);
      expect((e as Error).message).to.contain("assets.0.powerW");
    }
  });

  it("drops answers not signed by the DSO key it was given, and gives up with DSO_UNAVAILABLE", async () => {
    const client = new DsoClient({
      endpoint: w.endpoint,
      householdId: "h1",
      key: w.keys.h1 as SigningKey,
      clock,
      dsoPublicKeyHex: publicKeyHex(testKey("not-the-dso")),
      timeoutMs: 300,
      attempts: 2,
    });
    try {
      await client.withdraw({ requestId: "impostor", anonAddress: anon(14), assets: [], financial: 1 });
      expect.fail("resolved");
    } catch (e) {
      expect(isError(e, "DSO_UNAVAILABLE")).to.equal(true);
    } finally {
      client.close();
    }
    // The DSO did serve it (once, idempotently, across both attempts).
    expect(w.book.request("h1", "impostor")?.status).to.equal("minted");
    expect(await w.market.financialBalance(anon(14))).to.equal(1n);
  });

  it("refuses an address with a broken checksum as INVALID_REQUEST", async () => {
    // A checksummed address with one letter's case flipped.
    const broken = "0x5fbDB2315678afecb367f032d93F642f64180aa3";
    const r = await w.client("h1").withdraw({ requestId: "ck", anonAddress: broken, assets: [], financial: 1 });
    expect(r.status === "failed" && r.reason).to.equal("INVALID_REQUEST");
  });
});

describe("Dso # bad input gets a named failedWithdrawal and the DSO keeps serving", () => {
  let w: World;
  before(async () => {
    w = await startWorld();
  });
  after(async () => w.stop());

  const message = (requestId: string): MessageInput => ({
    type: "withdrawAssets",
    requestId,
    anonAddress: "0x00000000000000000000000000000000000000c1",
    assets: [{ powerW: 100, start: 1, end: 1 }],
    financial: 0,
  });
  const sealAs = (
    from: string,
    key: SigningKey,
    requestId: string,
    over: { timestampMs?: number; nonceHex?: string } = {},
  ) =>
    sealEnvelope({
      from,
      key,
      message: message(requestId),
      timestampMs: over.timestampMs ?? clock.now(),
      ...(over.nonceHex ? { nonceHex: over.nonceHex } : {}),
    });

  async function expectRefusal(frames: Uint8Array[], reason: string, requestId: string | null) {
    const m = await exchange(w.endpoint, frames);
    expect(m.type).to.equal("failedWithdrawal");
    if (m.type !== "failedWithdrawal") return;
    expect(m.reason).to.equal(reason);
    expect(m.requestId).to.equal(requestId);
    expect(m.message.length).to.be.greaterThan(0);
  }

  afterEach(async () => {
    // The DSO still serves a good request after every bad one.
    const r = await w
      .client("h3")
      .withdraw({ requestId: `after-${Date.now()}`, anonAddress: anon(9), assets: [], financial: 1 });
    accepted(r);
  });

  it("malformed bytes: MALFORMED", async () => {
    await expectRefusal(
      [
        new TextEncoder().encode(
          "\x01 not an envelope at all, just text that is long enough to pass the length check.....",
        ),
      ],
      "MALFORMED",
      null,
    );
  });

  it("several frames where one is expected: MALFORMED", async () => {
    await expectRefusal([sealAs("h1", w.keys.h1 as SigningKey, "mf-1"), new Uint8Array([1, 2, 3])], "MALFORMED", null);
  });

  it("an envelope version this DSO does not speak: UNSUPPORTED_VERSION", async () => {
    const bytes = sealAs("h1", w.keys.h1 as SigningKey, "v-1");
    bytes[0] = 9;
    await expectRefusal([bytes], "UNSUPPORTED_VERSION", null);
  });

  it("an unknown key: UNKNOWN_KEY", async () => {
    await expectRefusal([sealAs("h1", testKey("mallory"), "uk-1")], "UNKNOWN_KEY", "uk-1");
  });

  it("a bad signature: BAD_SIGNATURE", async () => {
    const bytes = sealAs("h1", w.keys.h1 as SigningKey, "bs-1");
    bytes[10] = (bytes[10] as number) ^ 0x01;
    await expectRefusal([bytes], "BAD_SIGNATURE", "bs-1");
  });

  it("a replayed nonce: REPLAYED_NONCE, and the original still counts once", async () => {
    const bytes = sealAs("h1", w.keys.h1 as SigningKey, "rp-1");
    const first = await exchange(w.endpoint, [bytes]);
    expect(first.type).to.equal("withdrawalAccepted");
    await expectRefusal([bytes], "REPLAYED_NONCE", "rp-1");
  });

  it("a stale timestamp: STALE_TIMESTAMP, from a prosumer whose clock is a minute slow", async () => {
    const r = await w
      .client("h1", new OffsetClock(-60_000))
      .withdraw({ requestId: "st-1", anonAddress: anon(5), assets: [], financial: 1 });
    expect(r.status === "failed" && r.reason).to.equal("STALE_TIMESTAMP");
  });

  it("production over PV capacity: OVER_PV_CAPACITY", async () => {
    const r = await w.client("h1").withdraw({
      requestId: "pv-1",
      anonAddress: anon(6),
      assets: [{ powerW: 5_001, start: 50, end: 50 }],
      financial: 0,
    });
    expect(r.status === "failed" && r.reason).to.equal("OVER_PV_CAPACITY");
  });

  it("consumption over the connection limit: OVER_CONNECTION_LIMIT", async () => {
    const r = await w.client("h1").withdraw({
      requestId: "cl-1",
      anonAddress: anon(6),
      assets: [{ powerW: -8_001, start: 50, end: 50 }],
      financial: 0,
    });
    expect(r.status === "failed" && r.reason).to.equal("OVER_CONNECTION_LIMIT");
  });

  it("a feeder over its rating: OVER_FEEDER_RATING", async () => {
    accepted(
      await w.client("h1").withdraw({
        requestId: "fd-1",
        anonAddress: anon(7),
        assets: [{ powerW: 5_000, start: 60, end: 60 }],
        financial: 0,
      }),
    );
    const r = await w.client("h2").withdraw({
      requestId: "fd-2",
      anonAddress: anon(8),
      assets: [{ powerW: 5_001, start: 60, end: 60 }],
      financial: 0,
    });
    expect(r.status === "failed" && r.reason).to.equal("OVER_FEEDER_RATING");
  });

  it("money over the balance: INSUFFICIENT_BALANCE", async () => {
    const r = await w
      .client("h2")
      .withdraw({ requestId: "mb-1", anonAddress: anon(10), assets: [], financial: 1_000_001 });
    expect(r.status === "failed" && r.reason).to.equal("INSUFFICIENT_BALANCE");
  });

  it("gas funding asked of a DSO that does not fund gas: GAS_FUNDING_DISABLED", async () => {
    const r = await w
      .client("h2")
      .withdraw({ requestId: "gf-1", anonAddress: anon(11), assets: [], financial: 1, fundGas: true });
    expect(r.status === "failed" && r.reason).to.equal("GAS_FUNDING_DISABLED");
  });

  it("counted every refusal, and reported no internal error", () => {
    const refused = w.dso.stats.refused;
    for (const reason of [
      "MALFORMED",
      "UNSUPPORTED_VERSION",
      "UNKNOWN_KEY",
      "BAD_SIGNATURE",
      "REPLAYED_NONCE",
      "STALE_TIMESTAMP",
    ]) {
      expect(refused[reason as keyof typeof refused], reason).to.be.greaterThan(0);
    }
    expect(refused.INTERNAL_ERROR ?? 0).to.equal(0);
  });
});

describe("Dso # deposits and gas", () => {
  let w: World;
  afterEach(async () => w.stop());

  it("credits money deposited from a household's anonymous address, and only once", async () => {
    w = await startWorld();
    const signers = await hre.ethers.getSigners();
    const alice = signers[5];
    accepted(
      await w.client("h1").withdraw({ requestId: "d-1", anonAddress: alice.address, assets: [], financial: 500 }),
    );
    expect(w.book.balance("h1")).to.equal(999_500);
    await w.market.connect(alice).depositFinancial(200);
    await eventually("the deposit to be credited", () => w.book.balance("h1") === 999_700);
    const report = await w.client("h1").balance();
    expectExactly(report, { balance: 999_700, anonAddresses: [alice.address] });
    await new Promise((r) => setTimeout(r, 200));
    expect(w.book.balance("h1")).to.equal(999_700);
  });

  it("tracks assets split by a trade to their new owner and records that owner's deposit", async () => {
    w = await startWorld();
    const signers = await hre.ethers.getSigners();
    const [alice, bob] = [signers[6], signers[7]];
    const sell = accepted(
      await w.client("h1").withdraw({
        requestId: "s-1",
        anonAddress: alice.address,
        assets: [{ powerW: 1_000, start: 3, end: 4 }],
        financial: 0,
      }),
    );
    const buy = accepted(
      await w.client("h2").withdraw({
        requestId: "b-1",
        anonAddress: bob.address,
        assets: [{ powerW: -1_000, start: 3, end: 4 }],
        financial: 5_000,
      }),
    );
    await w.market.connect(alice).postOffer(sell.assetIds[0] as bigint, 1);
    const receipt = await (await w.market.connect(bob).acceptOffer(0, buy.assetIds[0] as bigint)).wait();
    // The traded production part goes to the buyer: find it among the split parts.
    let boughtId: bigint | undefined;
    for (const log of receipt?.logs ?? []) {
      const p = w.market.interface.parseLog(log);
      if (p?.name === "AssetSplit" && p.args.owner === bob.address && p.args.powerW > 0n) boughtId = p.args.assetID;
    }
    expect(boughtId === undefined).to.equal(false);
    await w.market.connect(bob).depositEnergyAsset(boughtId as bigint);
    await eventually("the split asset's deposit", () => w.book.energyDeposits("h2").length === 1);
    expect(w.book.energyDeposits("h2")[0]).to.deep.include({
      assetId: String(boughtId),
      powerW: "1000",
      start: "3",
      end: "4",
    });
    expect(w.book.energyDeposits("h1")).to.deep.equal([]);
    expect(w.book.asset(String(sell.assetIds[0]))?.status).to.equal("retired");
  });

  it("answers MINT_FAILED and refunds the household when the market refuses the mint", async () => {
    // Account 1 is not the market's DSO: the market reverts its mints.
    w = await startWorld({ wallet: new Wallet(hardhatPrivateKey(1), hre.ethers.provider) });
    const r = await w
      .client("h1")
      .withdraw({ requestId: "nm-1", anonAddress: anon(40), assets: [{ powerW: 1, start: 1, end: 1 }], financial: 7 });
    expect(r.status === "failed" && r.reason).to.equal("MINT_FAILED");
    expect(r.status === "failed" && r.message).to.contain("NotMinter");
    expect(w.book.balance("h1")).to.equal(1_000_000);
    expect(await w.market.assetCount()).to.equal(0n);
  });

  it('funds a new anonymous address\'s gas once in "dso" gas mode', async () => {
    w = await startWorld({ gasFundingWei: 10n ** 15n });
    const address = anon(77);
    const first = accepted(
      await w
        .client("h3")
        .withdraw({ requestId: "g-1", anonAddress: address, assets: [], financial: 1, fundGas: true }),
    );
    const second = accepted(
      await w
        .client("h3")
        .withdraw({ requestId: "g-2", anonAddress: address, assets: [], financial: 1, fundGas: true }),
    );
    expect(first.gasFundedWei).to.equal(10n ** 15n);
    expect(second.gasFundedWei).to.equal(0n);
    expect(await hre.ethers.provider.getBalance(address)).to.equal(10n ** 15n);
    // Through the market's fundGas, so the transfer shows in its logs.
    const funded = await w.market.queryFilter(w.market.filters.GasFunded());
    expect(funded.map((e) => [e.args.anonAddress, e.args.amountWei])).to.deep.equal([[address, 10n ** 15n]]);
    const tx = await hre.ethers.provider.getTransaction(funded[0]?.transactionHash as string);
    expect(tx?.to).to.equal(await w.market.getAddress());
  });

  it("fails only the request whose address refuses its gas (a contract), and mints the others", async () => {
    w = await startWorld({ gasFundingWei: 10n ** 15n });
    // The market itself has no receive function: any ether sent to it reverts.
    const contract = await w.market.getAddress();
    const [bad, good] = await Promise.all([
      w.client("h1").withdraw({ requestId: "c-1", anonAddress: contract, assets: [], financial: 1, fundGas: true }),
      w.client("h2").withdraw({ requestId: "c-2", anonAddress: anon(78), assets: [], financial: 1, fundGas: true }),
    ]);
    expect(bad.status === "failed" && bad.reason).to.equal("MINT_FAILED");
    expect(bad.status === "failed" && bad.message)
      .to.contain("GasTransferFailed")
      .and.to.contain("does not accept ether");
    expect(accepted(good).gasFundedWei).to.equal(10n ** 15n);
    expect(await hre.ethers.provider.getBalance(anon(78))).to.equal(10n ** 15n);
    expect(w.book.balance("h1")).to.equal(1_000_000);
  });
});

describe("Dso # mint gas limits without estimating", () => {
  // Every item fresh (new asset slots, new balance, new account): the most gas a batch can use.
  const fresh = (n: number, salt: number) =>
    Array.from({ length: n }, (_, i) => getAddress(`0x${(salt * 1000 + i + 1).toString(16).padStart(40, "0")}`));
  let market: EnergyMarket;

  before(async () => {
    const [dsoSigner] = await hre.ethers.getSigners();
    market = await deployEnergyMarket(dsoSigner);
  });

  async function gasUsed(send: Promise<{ wait(): Promise<{ gasUsed: bigint; status: number | null } | null> }>) {
    const receipt = await (await send).wait();
    expect(receipt?.status).to.equal(1);
    return receipt?.gasUsed as bigint;
  }

  for (const n of [1, 16, 64, 256]) {
    // The first (n = 1) is the market's first asset, which also initialises the asset array.
    it(`covers addEnergyAssets of ${n} asset(s), and is not loose by more than a half`, async () => {
      const limit = mintGasLimit("energy", n);
      const mints = fresh(n, n).map((anonAddress) => ({ anonAddress, powerW: -500, start: 40, end: 41 }));
      const used = await gasUsed(market.addEnergyAssets(mints, { gasLimit: limit }));
      expect(Number(used))
        .to.be.at.most(Number(limit))
        .and.at.least(Number(limit) * 0.6);
    });
  }

  for (const n of [1, 64]) {
    it(`covers addFinancialBalances and fundGas of ${n} new address(es)`, async () => {
      const to = fresh(n, 500 + n);
      const money = await gasUsed(
        market.addFinancialBalances(
          to,
          to.map(() => 7),
          { gasLimit: mintGasLimit("financial", n) },
        ),
      );
      expect(Number(money)).to.be.at.most(Number(mintGasLimit("financial", n)));
      const wei = 10n ** 12n;
      const gas = await gasUsed(market.fundGas(to, wei, { value: wei * BigInt(n), gasLimit: mintGasLimit("gas", n) }));
      expect(Number(gas)).to.be.at.most(Number(mintGasLimit("gas", n)));
    });
  }

  it("refuses a batch size whose mint could not fit one transaction's gas cap, naming the option", () => {
    const base = { endpoint: "tcp://127.0.0.1:*" } as DsoOptions;
    expect(() => new Dso({ ...base, maxBatchAssets: 400 })).to.throw(/maxBatchAssets: must be in \[1, 274\]/);
    expect(() => new Dso({ ...base, maxBatchRequests: 1000 })).to.throw(/maxBatchRequests: must be at most 379/);
  });
});
