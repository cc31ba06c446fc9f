import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { expect } from "chai";
import { Wallet } from "ethers";
import { AccountBook, exportDsoView } from "../../agents/account-book";
import { AllowanceDeskClient } from "../../agents/allowance-desk-client";
import { LiveClock } from "../../agents/clock-live";
import { deployEnergyMarket } from "../../agents/deploy-market";
import { Dso } from "../../agents/dso";
import { AllowanceDesk } from "../../agents/dso-allowance-desk";
import { publicKeyHex } from "../../agents/envelope";
import { HouseholdRegistry } from "../../agents/household-registry";
import { PrivateStore } from "../../agents/private-store";
import { coverWithNotes, PrivateWithdrawer } from "../../agents/private-withdrawer";
import { PseudonymWallet } from "../../agents/pseudonym-wallet";
import { createRng } from "../../common/rng";
import { deployZk } from "../../mixer/deploy";
import { buildPoseidon } from "../../mixer/poseidon";
import { Prover, toSolidityProof } from "../../mixer/prover";
import { Relayer } from "../../mixer/relayer";
import { proveMixerWithdrawal, RelayerClient } from "../../mixer/relayer-client";
import { syncMixerTree } from "../../mixer/tree-sync";
import { type EnergyMarket, type Mixer, Mixer__factory } from "../../typechain-types";
import { hardhatPrivateKey, testGrid, testKey } from "../fixtures/dso";
import { expectExactly } from "../fixtures/exactly";
import { counterBytes } from "../fixtures/zk";

const hre = require("hardhat");

const fees = { mixer: 10n, allowance: 10n, gasDrop: 10n };

describe("agents/private-withdrawer # coverWithNotes", () => {
  const denominations = [1000n, 10000n, 100000n];
  const cover = (financial: bigint, assets = 1, gasDrop = false, available?: Map<bigint, number>) =>
    coverWithNotes({ financial, assets, gasDrop, fees, denominations, ...(available ? { available } : {}) });

  it("pays money and fees with few notes and little change", () => {
    expect(cover(9000n)).to.deep.equal([10000n]);
    expect(cover(6000n)).to.deep.equal([10000n]);
    expect(cover(10_500n)).to.deep.equal([10000n, 1000n]);
    expect(cover(2500n, 1, true)).to.deep.equal([1000n, 1000n, 1000n]);
    // A producer's fee note: the smallest denomination.
    expect(cover(0n, 1, true)).to.deep.equal([1000n]);
    // The fee comes on top: 9980 + 20 fills a 10000 note exactly, 9981 does not.
    expect(cover(9980n)).to.deep.equal([10000n]);
    expect(cover(9981n)).to.deep.equal([10000n, 1000n]);
    // Each asset rides on a note of its own.
    expect(cover(0n, 2)).to.deep.equal([1000n, 1000n]);
    expect(cover(0n, 0)).to.deep.equal([]);
  });

  it("uses only the notes held, and says when they do not pay", () => {
    const held = new Map([
      [1000n, 3],
      [100000n, 0],
    ]);
    expect(cover(2900n, 1, false, held)).to.deep.equal([1000n, 1000n, 1000n]);
    expect(cover(2990n, 1, false, held)).to.equal(undefined);
  });
});

describe("agents/private-withdrawer", () => {
  const clock = new LiveClock();
  const grid = testGrid();
  const dsoKey = testKey("dso");
  let dir: string;
  let book: AccountBook;
  let dso: Dso;
  let desk: AllowanceDesk;
  let relayer: Relayer;
  let deskClient: AllowanceDeskClient;
  let prover: Prover;
  let market: EnergyMarket;
  const state = {} as { zk: Awaited<ReturnType<typeof deployZk>>; fromBlock: number };
  let withdrawer: PrivateWithdrawer;
  let store: PrivateStore;
  let pseudonymKey: string;

  before(async () => {
    prover = new Prover();
    const [dsoSigner] = await hre.ethers.getSigners();
    market = await deployEnergyMarket(dsoSigner);
    const marketAddress = await market.getAddress();
    const fromBlock = await hre.ethers.provider.getBlockNumber();
    const zk = await deployZk({ marketAddress, dso: dsoSigner, denominations: [1000n, 10000n] });
    dir = mkdtempSync(join(tmpdir(), "petra-private-"));
    const registry = new HouseholdRegistry(grid.registry);
    book = new AccountBook({ path: join(dir, "dso.sqlite"), marketAddress, chainId: 31337, synchronous: "NORMAL" });
    const dsoWallet = new Wallet(hardhatPrivateKey(0), hre.ethers.provider);
    // The DSO as it runs: its minter and deposit watcher, and the desk, on one account book.
    dso = new Dso({
      endpoint: "tcp://127.0.0.1:*",
      registry,
      book,
      provider: hre.ethers.provider,
      wallet: dsoWallet,
      marketAddress,
      chainId: 31337,
      signingKey: dsoKey,
      clock,
      logPollIntervalMs: 50,
      fromBlock,
    });
    await dso.start();
    const pools = [...zk.mixers.values()];
    desk = new AllowanceDesk({
      endpoint: "tcp://127.0.0.1:*",
      registry,
      book,
      signer: dsoWallet,
      vaults: { consumption: await zk.vault.getAddress() },
      pools: await Promise.all(pools.map((p: Mixer) => p.getAddress())),
      signingKey: dsoKey,
      clock,
      receiptPollMs: 10,
    });
    await desk.start();
    relayer = new Relayer({
      provider: hre.ethers.provider,
      privateKey: hardhatPrivateKey(13),
      pools: await Promise.all(pools.map((p: Mixer) => p.getAddress())),
      vaults: [await zk.vault.getAddress()],
      gasDropWei: 10n ** 16n,
      prover,
    });
    await relayer.start();
    deskClient = new AllowanceDeskClient({
      endpoint: desk.endpoint,
      householdId: "h1",
      key: grid.keys.h1,
      clock,
      dsoPublicKeyHex: publicKeyHex(dsoKey),
      timeoutMs: 20_000,
      attempts: 1,
    });
    Object.assign(state, { zk, fromBlock });
  });

  after(async () => {
    deskClient?.close();
    await relayer?.stop();
    await desk?.stop();
    await dso?.stop();
    book?.close();
    await prover?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("takes energy and money to a fresh pseudonym through the relayer, and the DSO's records cannot say whose it is", async function () {
    this.timeout(120_000);
    const balanceBefore = book.balance("h1") as number;
    store = PrivateStore.open(join(dir, "h1.private.json"), "h1");
    withdrawer = new PrivateWithdrawer({
      householdId: "h1",
      clock,
      provider: hre.ethers.provider,
      desk: deskClient,
      pseudonymDesk: ({ address, key }) =>
        new AllowanceDeskClient({
          endpoint: desk.endpoint,
          householdId: address,
          key,
          clock,
          dsoPublicKeyHex: publicKeyHex(dsoKey),
          timeoutMs: 20_000,
          attempts: 1,
        }),
      relayer: new RelayerClient({ url: relayer.url }),
      prover,
      store,
      chainId: 31337n,
      vaults: { consumption: await state.zk.vault.getAddress() },
      pools: new Map(
        await Promise.all([...state.zk.mixers].map(async ([d, m]) => [d, await m.getAddress()] as [bigint, string])),
      ),
      fromBlock: state.fromBlock,
      randomBytes: counterBytes(300),
    });
    // The household asks, under its own name, for an allowance up to its limit and the notes it will need.
    await withdrawer.prepare({
      windowStart: 100,
      windowEnd: 103,
      capsW: { consumption: 8000 },
      withdrawals: [{ financial: 9000, assets: 1, gasDrop: true }],
    });
    expect(withdrawer.holdings()).to.deep.equal({ notes: { "10000": 1 }, allowances: 1 });
    expect(book.balance("h1")).to.equal(balanceBefore - 10000);

    // Trading time: a pseudonym that has never seen ether or the DSO.
    const pseudonym = new PseudonymWallet({
      runSeed: 7,
      householdId: "h1",
      policy: { kind: "per-interval" },
      rng: createRng(7),
    }).next(100);
    pseudonymKey = pseudonym.privateKey;
    expect(await hre.ethers.provider.getBalance(pseudonym.address)).to.equal(0n);
    const outcome = await withdrawer.withdraw({
      requestId: "h1:100",
      anonAddress: pseudonym.address,
      assets: [{ powerW: -2500, start: 100, end: 100 }],
      financial: 9000,
      fundGas: true,
    });
    expect(outcome.ok, JSON.stringify(outcome)).to.equal(true);
    const assetId = BigInt((outcome as { assetIds: string[] }).assetIds[0] as string);
    const asset = await market.energyAsset(assetId);
    expect([asset.owner, asset.powerW, asset.start, asset.end]).to.deep.equal([pseudonym.address, -2500n, 100n, 100n]);
    expect(await market.financialBalance(pseudonym.address)).to.equal(10000n - 30n);
    expect(await market.financialBalance(relayer.address)).to.equal(30n);
    // Its only ether is the relayer's gas drop, and it is enough to hand the asset back to the DSO.
    expect(await hre.ethers.provider.getBalance(pseudonym.address)).to.equal(10n ** 16n);
    const mine = market.connect(new Wallet(pseudonym.privateKey, hre.ethers.provider));
    await (await mine.depositEnergyAsset(assetId)).wait();
    // What is left of the allowance is the household's, in its store, for the next intervals.
    expect(withdrawer.holdings()).to.deep.equal({ notes: {}, allowances: 2 });

    // The DSO saw the asset minted and handed back (its log watcher records both)...
    const until = Date.now() + 10_000;
    while (book.asset(assetId.toString())?.status !== "deposited" && Date.now() < until) await clock.sleep(50);
    expect(book.asset(assetId.toString())?.status).to.equal("deposited");
    // ...but no record of the DSO joins the pseudonym with the household.
    book.db.pragma("wal_checkpoint(FULL)");
    const db = new Database(join(dir, "dso.sqlite"), { readonly: true });
    const needles = [pseudonym.address.toLowerCase().slice(2), BigInt(pseudonym.address).toString()];
    let rowsWithPseudonym = 0;
    try {
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
      for (const { name } of tables) {
        for (const row of db.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[]) {
          const text = JSON.stringify(row).toLowerCase();
          if (!needles.some((n) => text.includes(n))) continue;
          rowsWithPseudonym++;
          expect(text, `${name}: ${text}`).not.to.include('"h1"');
          expect(name, `a DSO table that names the pseudonym: ${text}`).to.be.oneOf(["assets", "deposits"]);
        }
      }
    } finally {
      db.close();
    }
    expect(rowsWithPseudonym, "the DSO did see the pseudonym on chain").to.be.greaterThan(0);
    expect(exportDsoView(join(dir, "dso.sqlite"))).to.deep.equal({});
    const deskRows = desk.records().filter((r) => r.householdId === "h1");
    expect(deskRows.map((r) => r.kind).sort()).to.deep.equal(["allowance", "notes"]);
    expect(JSON.stringify(deskRows).toLowerCase()).not.to.include(needles[0]);
  });

  it("credits money a pseudonym deposits back through notes exactly once, when the household redeems them", async function () {
    this.timeout(180_000);
    const pseudonym = new Wallet(pseudonymKey, hre.ethers.provider);
    const dsoAddress = await market.dso();
    const balanceBefore = book.balance("h1") as number;
    const dsoMoneyBefore = await market.financialBalance(dsoAddress);
    // The pseudonym holds 10000 - 30 from the first test: 9 notes of 1000, change 970 stays.
    expect(await market.financialBalance(pseudonym.address)).to.equal(9970n);
    const back = await withdrawer.depositBack(pseudonym);
    const { lastDepositBlock, ...outcome } = back;
    expectExactly(outcome, { pseudonym: pseudonym.address, amount: 9000n, notes: 9, change: 970n, refused: [] });
    // The block the prosumer waits to replay before it reads the balance again.
    const logs = await market.queryFilter(market.filters.FinancialDeposited(pseudonym.address));
    expect(lastDepositBlock).to.equal(logs.at(-1)?.blockNumber);
    expect(await market.financialBalance(pseudonym.address)).to.equal(970n);
    expect(withdrawer.holdings().notes).to.deep.equal({ "1000": 9 });
    // The DSO's watcher sees the deposit, and credits no one: it does not know the pseudonym.
    const deposit = () =>
      book.db
        .prepare("SELECT household_id, amount FROM deposits WHERE kind = 'financial' AND anon_address = ?")
        .get(pseudonym.address.toLowerCase()) as { household_id: string | null; amount: number } | undefined;
    for (const until = Date.now() + 10_000; !deposit() && Date.now() < until; ) await clock.sleep(50);
    expect(deposit()).to.deep.equal({ household_id: null, amount: 9000 });
    expect(book.balance("h1")).to.equal(balanceBefore);

    // A tampered proof and a proof paying someone else are refused by name; nothing is lost.
    const poseidon = await buildPoseidon();
    const note = store.notes.find((n) => n.status === "unspent") as (typeof store.notes)[number];
    const tree = await syncMixerTree(Mixer__factory.connect(note.pool, hre.ethers.provider));
    const redemption = async (recipient: string) => {
      const wire = await proveMixerWithdrawal({
        prover,
        poseidon,
        tree,
        note: note.note,
        pool: note.pool,
        recipient,
        relayer: dsoAddress,
        fee: 0n,
      });
      const p = toSolidityProof(wire.proof as Parameters<typeof toSolidityProof>[0]);
      const s = (x: bigint) => x.toString();
      return {
        pool: note.pool,
        root: wire.root,
        nullifierHash: wire.nullifierHash,
        proof: {
          pA: [s(p.pA[0]), s(p.pA[1])] as [string, string],
          pB: [
            [s(p.pB[0][0]), s(p.pB[0][1])],
            [s(p.pB[1][0]), s(p.pB[1][1])],
          ] as [[string, string], [string, string]],
          pC: [s(p.pC[0]), s(p.pC[1])] as [string, string],
        },
      };
    };
    const good = await redemption(dsoAddress);
    const tampered = {
      ...good,
      proof: { ...good.proof, pA: [good.proof.pA[1], good.proof.pA[0]] as [string, string] },
    };
    const elsewhere = await redemption(pseudonym.address);
    for (const [what, body] of [
      ["a tampered proof", tampered],
      ["a proof paying the pseudonym", elsewhere],
    ] as const) {
      const r = await deskClient.redeemNote({ requestId: `bad-${what.length}`, ...body });
      expect(r.type === "deskRefused" && r.reason, what).to.equal("PROOF_INVALID");
      expect(r.type === "deskRefused" && r.message, what).to.match(/verifier|refuses/);
    }
    const pool = Mixer__factory.connect(note.pool, hre.ethers.provider);
    expect(await pool.nullifierSpent(BigInt(good.nullifierHash))).to.equal(false);
    expect(book.balance("h1")).to.equal(balanceBefore);

    // The genuine one credits 1000; re-sent, it is answered again and credits nothing more; the
    // same note under another request id is refused.
    const first = await deskClient.redeemNote({ requestId: "h1:redeem:manual", ...good });
    expect(first.type, JSON.stringify(first)).to.equal("noteRedeemed");
    expect(book.balance("h1")).to.equal(balanceBefore + 1000);
    expect(await deskClient.redeemNote({ requestId: "h1:redeem:manual", ...good })).to.deep.equal(first);
    const twice = await deskClient.redeemNote({ requestId: "h1:redeem:again", ...good });
    expect(twice.type === "deskRefused" && twice.reason).to.equal("NULLIFIER_SPENT");
    expect(book.balance("h1")).to.equal(balanceBefore + 1000);
    note.status = "spent";
    store.save();

    // The rest through the withdrawer.
    const redeemed = await withdrawer.redeemNotes();
    expect(redeemed).to.deep.equal({ redeemed: 8, amount: 8000n, balance: balanceBefore + 9000, refused: [] });
    expect(book.balance("h1")).to.equal(balanceBefore + 9000);
    expect(withdrawer.holdings().notes).to.deep.equal({});
    expect(await market.financialBalance(dsoAddress)).to.equal(dsoMoneyBefore + 9000n);
    expect(desk.stats.moneyRedeemed).to.equal(9000);

    // What the desk recorded: the pseudonym's claim names no household, the household's
    // redemptions name no pseudonym.
    const rows = desk.records();
    const claim = rows.filter((r) => r.kind === "deposit-back");
    expectExactly(
      claim.map((r) => [r.householdId, r.amount]),
      [[pseudonym.address.toLowerCase(), 9000]],
    );
    const redemptions = rows.filter((r) => r.kind === "redemption");
    expect(redemptions.length).to.equal(9);
    expect(new Set(redemptions.map((r) => r.householdId))).to.deep.equal(new Set(["h1"]));
    expect(JSON.stringify(redemptions).toLowerCase()).not.to.include(pseudonym.address.toLowerCase().slice(2));
    const redemptionTable = book.db.prepare("SELECT * FROM desk_redemptions").all();
    expect(JSON.stringify(redemptionTable).toLowerCase()).not.to.include(pseudonym.address.toLowerCase().slice(2));
  });
});
