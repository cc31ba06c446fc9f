import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { id, Wallet } from "ethers";
import { Dealer } from "zeromq";
import { AccountBook } from "../../agents/account-book";
import { AllowanceDeskClient } from "../../agents/allowance-desk-client";
import {
  type DeskMessage,
  depositBackKeyText,
  openDeskEnvelope,
  sealDeskEnvelope,
} from "../../agents/allowance-messages";
import { LiveClock } from "../../agents/clock-live";
import { deployEnergyMarket } from "../../agents/deploy-market";
import { AllowanceDesk, type AllowanceDeskOptions } from "../../agents/dso-allowance-desk";
import { generateSigningKey, publicKeyHex } from "../../agents/envelope";
import { HouseholdRegistry } from "../../agents/household-registry";
import { ZK } from "../../common/zk-params";
import { allowanceInner, allowanceLeaf, freshSecret } from "../../mixer/allowance";
import { deployZk } from "../../mixer/deploy";
import { createNote, noteCommitment } from "../../mixer/note";
import { buildPoseidon, type Poseidon } from "../../mixer/poseidon";
import { Prover, toSolidityProof } from "../../mixer/prover";
import { proveMixerWithdrawal } from "../../mixer/relayer-client";
import { syncAllowanceTree, syncMixerTree } from "../../mixer/tree-sync";
import type { AllowanceVault, EnergyMarket, Mixer } from "../../typechain-types";
import { hardhatPrivateKey, testGrid, testKey } from "../fixtures/dso";
import { counterBytes } from "../fixtures/zk";

const hre = require("hardhat");

describe("agents/dso-allowance-desk", () => {
  const clock = new LiveClock();
  const grid = testGrid();
  const dsoKey = testKey("dso");
  const rnd = counterBytes(7);
  let poseidon: Poseidon;
  let dir: string;
  let book: AccountBook;
  let desk: AllowanceDesk;
  let deskOptions: AllowanceDeskOptions;
  let consumptionVault: AllowanceVault;
  let productionVault: AllowanceVault;
  let pool: Mixer;
  let dso: Wallet;
  let market: EnergyMarket;
  const clients: AllowanceDeskClient[] = [];

  const client = (householdId: string) => {
    const c = new AllowanceDeskClient({
      endpoint: desk.endpoint,
      householdId,
      key: grid.keys[householdId as "h1"] ?? testKey(householdId),
      clock,
      dsoPublicKeyHex: publicKeyHex(dsoKey),
      timeoutMs: 10_000,
      attempts: 1,
    });
    clients.push(c);
    return c;
  };
  /** A fresh `inner` = Poseidon(2)(secret, nullifier), what a household sends the desk. */
  const innerOf = (): bigint => allowanceInner(poseidon, { secret: freshSecret(rnd), nullifier: freshSecret(rnd) });
  let firstInner = 0n;
  let seq = 0;
  const rid = () => `r${seq++}`;

  /** Raw frames on a fresh DEALER; the desk's decoded answer. */
  async function exchange(frames: Uint8Array[]): Promise<DeskMessage> {
    const dealer = new Dealer({ linger: 0, receiveTimeout: 10_000 });
    dealer.connect(desk.endpoint);
    try {
      await dealer.send(frames);
      const [reply] = await dealer.receive();
      const opened = openDeskEnvelope(reply, {
        nowMs: clock.now(),
        maxClockSkewMs: 60_000,
        resolveKey: () => dsoKey.publicKey,
      });
      if (!opened.ok) throw new Error(`unreadable answer: ${opened.detail}`);
      return opened.envelope.message;
    } finally {
      dealer.close();
    }
  }

  before(async () => {
    poseidon = await buildPoseidon();
    const [dsoSigner] = await hre.ethers.getSigners();
    market = await deployEnergyMarket(dsoSigner);
    const marketAddress = await market.getAddress();
    const zk = await deployZk({ marketAddress, dso: dsoSigner, denominations: [1000n, 100000n] });
    const production = await deployZk({ marketAddress, dso: dsoSigner, denominations: [], vaultDirection: 1 });
    consumptionVault = zk.vault;
    productionVault = production.vault;
    pool = zk.mixers.get(1000n) as Mixer;
    dir = mkdtempSync(join(tmpdir(), "petra-desk-"));
    book = new AccountBook({ path: join(dir, "dso.sqlite"), marketAddress, chainId: 31337, synchronous: "NORMAL" });
    dso = new Wallet(hardhatPrivateKey(0), hre.ethers.provider);
    deskOptions = {
      endpoint: "tcp://127.0.0.1:*",
      registry: new HouseholdRegistry(grid.registry),
      book,
      signer: dso,
      vaults: { consumption: await consumptionVault.getAddress(), production: await productionVault.getAddress() },
      pools: [await pool.getAddress(), await (zk.mixers.get(100000n) as Mixer).getAddress()],
      signingKey: dsoKey,
      clock,
      maxWindowIntervals: 96,
      receiptPollMs: 10,
    };
    desk = new AllowanceDesk(deskOptions);
    await desk.start();
  });

  after(async () => {
    for (const c of clients) c.close();
    await desk?.stop();
    book?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe("allowances", () => {
    it("inserts the leaf it computes for the approved cap and window into the vault's tree", async () => {
      firstInner = innerOf();
      const r = await client("h1").requestAllowance({
        requestId: rid(),
        direction: "consumption",
        capW: 8000,
        windowStart: 100,
        windowEnd: 110,
        inner: firstInner,
      });
      expect(r.type, JSON.stringify(r)).to.equal("allowanceIssued");
      expect(r.type === "allowanceIssued" && r.vault).to.equal(await consumptionVault.getAddress());
      const leaf = allowanceLeaf(poseidon, { capW: 8000n, windowStart: 100n, windowEnd: 110n }, firstInner);
      expect(r.type === "allowanceIssued" && r.commitment).to.equal(leaf.toString());
      expect((await syncAllowanceTree(consumptionVault)).leaves).to.deep.equal([leaf]);
      // The leaf binds the cap and window: a larger cap or a wider window gives another hash.
      for (const claim of [
        { capW: 8001n, windowStart: 100n, windowEnd: 110n },
        { capW: 8000n, windowStart: 99n, windowEnd: 110n },
        { capW: 8000n, windowStart: 100n, windowEnd: 111n },
      ]) {
        expect(allowanceLeaf(poseidon, claim, firstInner)).to.not.equal(leaf);
      }
    });

    it("counts an issued cap against the household's limit per interval of its window", async () => {
      const over = await client("h1").requestAllowance({
        requestId: rid(),
        direction: "consumption",
        capW: 1,
        windowStart: 110,
        windowEnd: 120,
        inner: innerOf(),
      });
      expect(over.type === "deskRefused" && over.reason).to.equal("OVER_CONNECTION_LIMIT");
      expect(over.type === "deskRefused" && over.message).to.match(/interval 110/);
      // The interval after the window is free again.
      const next = await client("h1").requestAllowance({
        requestId: rid(),
        direction: "consumption",
        capW: 8000,
        windowStart: 111,
        windowEnd: 120,
        inner: innerOf(),
      });
      expect(next.type, JSON.stringify(next)).to.equal("allowanceIssued");
    });

    it("keeps the caps on a feeder within its rating, per direction", async () => {
      const pv = await client("h1").requestAllowance({
        requestId: rid(),
        direction: "production",
        capW: 5000,
        windowStart: 100,
        windowEnd: 105,
        inner: innerOf(),
      });
      expect(pv.type, JSON.stringify(pv)).to.equal("allowanceIssued");
      expect(pv.type === "allowanceIssued" && pv.vault).to.equal(await productionVault.getAddress());
      // h2 is on the same 10 kW feeder: 5 kW + 6 kW of production is too much, wherever the windows overlap.
      const feeder = await client("h2").requestAllowance({
        requestId: rid(),
        direction: "production",
        capW: 6000,
        windowStart: 105,
        windowEnd: 108,
        inner: innerOf(),
      });
      expect(feeder.type === "deskRefused" && feeder.reason).to.equal("OVER_FEEDER_RATING");
      const pvCap = await client("h2").requestAllowance({
        requestId: rid(),
        direction: "production",
        capW: 6001,
        windowStart: 106,
        windowEnd: 108,
        inner: innerOf(),
      });
      expect(pvCap.type === "deskRefused" && pvCap.reason).to.equal("OVER_PV_CAPACITY");
      const ok = await client("h2").requestAllowance({
        requestId: rid(),
        direction: "production",
        capW: 5000,
        windowStart: 105,
        windowEnd: 108,
        inner: innerOf(),
      }); // 5 + 5 = 10 kW in interval 105: exactly the rating
      expect(ok.type, JSON.stringify(ok)).to.equal("allowanceIssued");
    });
  });

  describe("notes", () => {
    it("pays notes into the mixer from the household's balance", async () => {
      const notes = Array.from({ length: 3 }, () =>
        createNote({ chainId: 31337n, denomination: 1000n, randomBytes: rnd }),
      );
      const commitments = notes.map((n) => noteCommitment(poseidon, n));
      const before = book.balance("h3") as number;
      const r = await client("h3").depositNotes({ requestId: rid(), denomination: 1000n, commitments });
      expect(r.type, JSON.stringify(r)).to.equal("notesDeposited");
      expect(r.type === "notesDeposited" && r.balance).to.equal(before - 3000);
      expect(book.balance("h3")).to.equal(before - 3000);
      expect((await syncMixerTree(pool)).leaves).to.deep.equal(commitments);
      const poor = await client("h3").depositNotes({
        requestId: rid(),
        denomination: 100000n,
        commitments: Array.from({ length: 10 }, (_x, i) => 7_000_000n + BigInt(i)),
      });
      expect(poor.type === "deskRefused" && poor.reason).to.equal("INSUFFICIENT_BALANCE");
      const nopool = await client("h3").depositNotes({ requestId: rid(), denomination: 10000n, commitments: [5n] });
      expect(nopool.type === "deskRefused" && nopool.reason).to.equal("NO_SUCH_POOL");
      expect(book.balance("h3")).to.equal(before - 3000);
    });

    it("pays each request's notes with one depositMany, and batches requests that wait together", async () => {
      const stats0 = desk.stats.noteDeposits;
      const treeBefore = (await syncMixerTree(pool)).leaves.length;
      const requests = ["h1", "h2", "h3", "h1"].map((h) => ({
        h,
        commitments: Array.from({ length: 4 }, () =>
          noteCommitment(poseidon, createNote({ chainId: 31337n, denomination: 1000n, randomBytes: rnd })),
        ),
      }));
      const answers = await Promise.all(
        requests.map((r) =>
          client(r.h).depositNotes({ requestId: rid(), denomination: 1000n, commitments: r.commitments }),
        ),
      );
      const hashes = new Set<string>();
      for (const a of answers) {
        expect(a.type, JSON.stringify(a)).to.equal("notesDeposited");
        if (a.type !== "notesDeposited") continue;
        expect(new Set(a.txHashes).size, "one transaction per request").to.equal(1);
        hashes.add(a.txHashes[0] as string);
      }
      expect(hashes.size).to.be.at.most(requests.length);
      const leaves = (await syncMixerTree(pool)).leaves;
      expect(leaves.length - treeBefore).to.equal(16);
      expect(new Set(leaves).size, "no note twice").to.equal(leaves.length);
      const stats = desk.stats.noteDeposits;
      expect(stats.transactions - stats0.transactions).to.equal(hashes.size);
      expect(stats.notes - stats0.notes).to.equal(16);
      let gas = 0;
      for (const h of hashes) gas += Number((await hre.ethers.provider.getTransactionReceipt(h))?.gasUsed ?? 0n);
      expect(stats.gasUsed - stats0.gasUsed, "the gas the desk counts is the gas its receipts show").to.equal(gas);
    });

    it("after a restart deposits only the notes of a reserved request that are not in the tree yet", async () => {
      const commitments = Array.from({ length: 5 }, () =>
        noteCommitment(poseidon, createNote({ chainId: 31337n, denomination: 1000n, randomBytes: rnd })),
      );
      const poolAddress = await pool.getAddress();
      await desk.stop();
      // As a crash leaves it: the request reserved and debited, two of its notes already mined.
      const requestId = rid();
      const now = clock.now();
      book.db
        .prepare(
          `INSERT INTO desk_requests (household_id, request_id, body_hash, kind, status, contract, denomination, amount,
             created_ms, updated_ms) VALUES ('h2', ?, 'x', 'notes', 'pending', ?, '1000', 5000, ?, ?)`,
        )
        .run(requestId, poolAddress, now, now);
      const ins = book.db.prepare(
        `INSERT INTO desk_commitments (contract, commitment, household_id, request_id, position, status)
         VALUES (?, ?, 'h2', ?, ?, 'pending')`,
      );
      for (const [i, c] of commitments.entries()) ins.run(poolAddress, c.toString(), requestId, i);
      await (await pool.connect(dso).depositMany(commitments.slice(0, 2))).wait();
      desk = new AllowanceDesk({ ...deskOptions, book });
      await desk.start();
      for (let i = 0; i < 200 && desk.records().find((r) => r.requestId === requestId)?.status !== "done"; i++) {
        await clock.sleep(50);
      }
      const record = desk.records().find((r) => r.requestId === requestId);
      expect(record?.status).to.equal("done");
      const leaves = (await syncMixerTree(pool)).leaves;
      for (const c of commitments) expect(leaves.filter((l) => l === c).length, `${c}`).to.equal(1);
      expect(desk.stats.noteDeposits).to.deep.equal({
        transactions: 1,
        notes: 3,
        gasUsed: desk.stats.noteDeposits.gasUsed,
      });
    });
  });

  describe("deposit-back", () => {
    it("puts a pseudonym's deposited money into notes once, for the pseudonym that made it only", async () => {
      const [, funder] = await hre.ethers.getSigners();
      const pseudonym = new Wallet(id("desk-test pseudonym"), hre.ethers.provider);
      await (await funder.sendTransaction({ to: pseudonym.address, value: 10n ** 17n })).wait();
      await (await market.connect(dso).addFinancialBalance(pseudonym.address, 3500)).wait();
      const deposit = await (await market.connect(pseudonym).depositFinancial(3000)).wait();
      const txHash = deposit?.hash as string;
      const from = pseudonym.address.toLowerCase();
      const key = generateSigningKey();
      const certify = (w: Wallet, k = key) =>
        w.signMessage(depositBackKeyText({ chainId: 31337n, dso: dso.address, keyHex: publicKeyHex(k) }));
      const asPseudonym = (k = key) =>
        new AllowanceDeskClient({
          endpoint: desk.endpoint,
          householdId: from,
          key: k,
          clock,
          dsoPublicKeyHex: publicKeyHex(dsoKey),
          timeoutMs: 10_000,
          attempts: 1,
        });
      const notes = () =>
        Array.from({ length: 3 }, () =>
          noteCommitment(poseidon, createNote({ chainId: 31337n, denomination: 1000n, randomBytes: rnd })),
        );
      const commitments = notes();
      const c = asPseudonym();
      clients.push(c);
      const ask = async (over: Partial<Parameters<AllowanceDeskClient["depositBack"]>[0]>) =>
        c.depositBack({
          requestId: rid(),
          txHash,
          denomination: 1000n,
          commitments: notes(),
          keyCertificate: await certify(pseudonym),
          ...over,
        });
      const balanceBefore = book.balance("h1");
      const cases: [string, Promise<unknown>, string][] = [
        [
          "a certificate by someone else",
          ask({ keyCertificate: await certify(new Wallet(id("desk-test someone else"))) }),
          "BAD_KEY_CERTIFICATE",
        ],
        ["a transaction that deposits nothing from it", ask({ txHash: `0x${"ab".repeat(32)}` }), "DEPOSIT_NOT_FOUND"],
        ["notes worth more than the deposit", ask({ commitments: [...notes(), 11n] }), "INVALID_REQUEST"],
        ["a denomination without a pool", ask({ denomination: 10000n, commitments: [12n] }), "NO_SUCH_POOL"],
      ];
      for (const [what, p, reason] of cases) {
        const r = (await p) as { type: string; reason?: string };
        expect([r.type, r.reason], what).to.deep.equal(["deskRefused", reason]);
      }
      const ok = await ask({ requestId: "back-1", commitments });
      expect(ok.type, JSON.stringify(ok)).to.equal("notesDeposited");
      const leaves = (await syncMixerTree(pool)).leaves;
      for (const x of commitments) expect(leaves.filter((l) => l === x).length).to.equal(1);
      expect(await ask({ requestId: "back-1", commitments })).to.deep.equal(ok);
      const again = await ask({ requestId: "back-2" });
      expect(again.type === "deskRefused" && again.reason).to.equal("DEPOSIT_CLAIMED");
      // A household cannot claim it under its own name, and a pseudonym can ask for nothing else.
      const asHousehold = await exchange([
        sealDeskEnvelope({
          from: "h1",
          key: grid.keys.h1,
          message: {
            type: "depositBackRequest",
            requestId: "back-h1",
            txHash,
            denomination: "1000",
            commitments: notes().map(String),
            keyCertificate: await certify(pseudonym),
          },
          timestampMs: clock.now(),
        }),
      ]);
      expect(asHousehold.type === "deskRefused" && asHousehold.reason).to.equal("INVALID_REQUEST");
      const other = await c.depositNotes({ requestId: rid(), denomination: 1000n, commitments: notes() });
      expect(other.type === "deskRefused" && other.reason).to.equal("INVALID_REQUEST");
      expect(book.balance("h1"), "a deposit-back credits no household").to.equal(balanceBefore);
      const record = desk.records().find((r) => r.requestId === "back-1");
      expect([record?.kind, record?.householdId, record?.amount]).to.deep.equal(["deposit-back", from, 3000]);
      expect(await market.financialBalance(pseudonym.address), "the change stays").to.equal(500n);
    });
  });

  describe("redemptions", () => {
    it("after a restart credits a redemption whose withdrawal was mined before the crash, once", async function () {
      this.timeout(60_000);
      const note = createNote({ chainId: 31337n, denomination: 1000n, randomBytes: rnd });
      await (await pool.connect(dso).depositMany([noteCommitment(poseidon, note)])).wait();
      const prover = new Prover();
      try {
        const wire = await proveMixerWithdrawal({
          prover,
          poseidon,
          tree: await syncMixerTree(pool),
          note,
          pool: await pool.getAddress(),
          recipient: dso.address,
          relayer: dso.address,
          fee: 0n,
        });
        const p = toSolidityProof(wire.proof as Parameters<typeof toSolidityProof>[0]);
        const proof = {
          pA: p.pA.map(String),
          pB: p.pB.map((r) => r.map(String)),
          pC: p.pC.map(String),
        };
        // The desk sent it and crashed before it recorded the hash.
        await (
          await pool
            .connect(dso)
            .withdraw(p.pA, p.pB, p.pC, BigInt(wire.root), BigInt(wire.nullifierHash), dso.address, dso.address, 0n)
        ).wait();
        await desk.stop();
        const now = clock.now();
        const poolAddress = await pool.getAddress();
        book.db
          .prepare(
            `INSERT INTO desk_requests (household_id, request_id, body_hash, kind, status, contract, denomination, amount,
               created_ms, updated_ms) VALUES ('h2', 'redeem-crash', 'x', 'redemption', 'pending', ?, '1000', 1000, ?, ?)`,
          )
          .run(poolAddress, now, now);
        book.db
          .prepare(
            `INSERT INTO desk_redemptions (pool, nullifier_hash, household_id, request_id, root, proof_json)
             VALUES (?, ?, 'h2', 'redeem-crash', ?, ?)`,
          )
          .run(poolAddress, BigInt(wire.nullifierHash).toString(), wire.root, JSON.stringify(proof));
        const before = book.balance("h2") as number;
        for (let restart = 0; restart < 2; restart++) {
          desk = new AllowanceDesk({ ...deskOptions, book });
          await desk.start();
          for (
            let i = 0;
            i < 200 && desk.records().find((r) => r.requestId === "redeem-crash")?.status !== "done";
            i++
          ) {
            await clock.sleep(50);
          }
          expect(desk.records().find((r) => r.requestId === "redeem-crash")?.status).to.equal("done");
          expect(book.balance("h2"), `restart ${restart}`).to.equal(before + 1000);
          if (restart === 0) await desk.stop();
        }
      } finally {
        await prover.close();
      }
    });
  });

  describe("refusals", () => {
    it("names what is wrong with each bad request, sends nothing for it, and keeps serving", async () => {
      const nonce = await dso.getNonce();
      const c = client("h3");
      const ask = (over: Partial<Parameters<AllowanceDeskClient["requestAllowance"]>[0]>) =>
        c.requestAllowance({
          requestId: rid(),
          direction: "consumption",
          capW: 100,
          windowStart: 10,
          windowEnd: 20,
          inner: innerOf(),
          ...over,
        });
      const cases: [string, Promise<unknown>, string][] = [
        ["a zero inner", ask({ inner: 0n }), "INVALID_COMMITMENT"],
        ["an inner outside the field", ask({ inner: ZK.fieldModulus }), "INVALID_COMMITMENT"],
        [
          "the inner, cap and window of an issued leaf",
          ask({ inner: firstInner, capW: 8000, windowStart: 100, windowEnd: 110 }),
          "COMMITMENT_TAKEN",
        ],
        ["a window longer than the desk allows", ask({ windowStart: 0, windowEnd: 96 }), "WINDOW_TOO_LONG"],
        ["a window that ends before it starts", ask({ windowStart: 20, windowEnd: 10 }), "INVALID_REQUEST"],
        ["a cap above the connection limit", ask({ capW: 20_001 }), "OVER_CONNECTION_LIMIT"],
        [
          "duplicate notes",
          c.depositNotes({ requestId: rid(), denomination: 1000n, commitments: [9n, 9n] }),
          "INVALID_COMMITMENT",
        ],
      ];
      for (const [what, p, reason] of cases) {
        const r = (await p) as { type: string; reason?: string; message?: string };
        expect([r.type, r.reason], what).to.deep.equal(["deskRefused", reason]);
        expect(r.message?.length, what).to.be.greaterThan(0);
      }

      const m: DeskMessage = {
        type: "allowanceRequest",
        requestId: "raw-1",
        direction: "consumption",
        capW: 100,
        windowStart: 30,
        windowEnd: 31,
        inner: innerOf().toString(),
      };
      const sealed = sealDeskEnvelope({ from: "h3", key: grid.keys.h3, message: m, timestampMs: clock.now() });
      const forged = sealed.slice();
      forged[10] = (forged[10] as number) ^ 1;
      const stranger = sealDeskEnvelope({ from: "h3", key: testKey("mallory"), message: m, timestampMs: clock.now() });
      const stale = sealDeskEnvelope({
        from: "h3",
        key: grid.keys.h3,
        message: m,
        timestampMs: clock.now() - 3_600_000,
      });
      // The household cannot name the leaf: a request carrying a commitment is malformed.
      const withCommitment = sealDeskEnvelope({
        from: "h3",
        key: grid.keys.h3,
        message: { ...m, requestId: "raw-2" },
        timestampMs: clock.now(),
      });
      const body = JSON.parse(new TextDecoder().decode(withCommitment.slice(65)));
      body.message.commitment = allowanceLeaf(
        poseidon,
        { capW: 100n, windowStart: 30n, windowEnd: 31n },
        5n,
      ).toString();
      const tampered = new Uint8Array([
        ...withCommitment.slice(0, 65),
        ...new TextEncoder().encode(JSON.stringify(body)),
      ]);
      const raw: [string, Uint8Array, string][] = [
        ["bytes that are no envelope", new TextEncoder().encode("hello"), "MALFORMED"],
        ["a request that names its own leaf", tampered, "MALFORMED"],
        ["a key nobody registered", stranger, "UNKNOWN_KEY"],
        ["a forged signature", forged, "BAD_SIGNATURE"],
        ["an old timestamp", stale, "STALE_TIMESTAMP"],
      ];
      for (const [what, bytes, reason] of raw) {
        const r = await exchange([bytes]);
        expect(r.type === "deskRefused" && r.reason, what).to.equal(reason);
      }
      expect(await dso.getNonce(), "a refusal costs the DSO no transaction").to.equal(nonce);

      // The genuine envelope is served, once: its replay is refused, its request id is answered again
      // with the same outcome, and reusing the id for another body is a conflict.
      const first = await exchange([sealed]);
      expect(first.type, JSON.stringify(first)).to.equal("allowanceIssued");
      expect(((await exchange([sealed])) as { reason?: string }).reason).to.equal("REPLAYED_NONCE");
      const again = await exchange([
        sealDeskEnvelope({ from: "h3", key: grid.keys.h3, message: m, timestampMs: clock.now() }),
      ]);
      expect(again).to.deep.equal(first);
      const conflict = await exchange([
        sealDeskEnvelope({ from: "h3", key: grid.keys.h3, message: { ...m, capW: 99 }, timestampMs: clock.now() }),
      ]);
      expect(conflict.type === "deskRefused" && conflict.reason).to.equal("REQUEST_CONFLICT");
      expect(await dso.getNonce()).to.equal(nonce + 1);
      expect(desk.stats.refused.REPLAYED_NONCE).to.equal(1);
    });
  });
});
