import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { Wallet } from "ethers";
import { Dealer } from "zeromq";
import { AccountBook } from "../../agents/account-book";
import { AllowanceDeskClient } from "../../agents/allowance-desk-client";
import { type DeskMessage, openDeskEnvelope, sealDeskEnvelope } from "../../agents/allowance-messages";
import { LiveClock } from "../../agents/clock-live";
import { deployEnergyMarket } from "../../agents/deploy-market";
import { AllowanceDesk } from "../../agents/dso-allowance-desk";
import { publicKeyHex } from "../../agents/envelope";
import { HouseholdRegistry } from "../../agents/household-registry";
import { ZK } from "../../common/zk-params";
import { type Allowance, allowanceCommitment, freshSecret } from "../../mixer/allowance";
import { deployZk } from "../../mixer/deploy";
import { createNote, noteCommitment } from "../../mixer/note";
import { buildPoseidon, type Poseidon } from "../../mixer/poseidon";
import { syncAllowanceTree, syncMixerTree } from "../../mixer/tree-sync";
import type { AllowanceVault, Mixer } from "../../typechain-types";
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
  let consumptionVault: AllowanceVault;
  let productionVault: AllowanceVault;
  let pool: Mixer;
  let dso: Wallet;
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
  const commitmentOf = (capW: bigint, windowStart: bigint, windowEnd: bigint): bigint => {
    const a: Allowance = { capW, windowStart, windowEnd, secret: freshSecret(rnd), nullifier: freshSecret(rnd) };
    return allowanceCommitment(poseidon, a);
  };
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
    const market = await deployEnergyMarket(dsoSigner);
    const marketAddress = await market.getAddress();
    const zk = await deployZk({ marketAddress, dso: dsoSigner, denominations: [1000n, 100000n] });
    const production = await deployZk({ marketAddress, dso: dsoSigner, denominations: [], vaultDirection: 1 });
    consumptionVault = zk.vault;
    productionVault = production.vault;
    pool = zk.mixers.get(1000n) as Mixer;
    dir = mkdtempSync(join(tmpdir(), "petra-desk-"));
    book = new AccountBook({ path: join(dir, "dso.sqlite"), marketAddress, chainId: 31337, synchronous: "NORMAL" });
    dso = new Wallet(hardhatPrivateKey(0), hre.ethers.provider);
    desk = new AllowanceDesk({
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
    });
    await desk.start();
  });

  after(async () => {
    for (const c of clients) c.close();
    await desk?.stop();
    book?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe("allowances", () => {
    it("inserts a commitment within the household's limit into the vault's tree", async () => {
      const commitment = commitmentOf(8000n, 100n, 110n);
      const r = await client("h1").requestAllowance({
        requestId: rid(),
        direction: "consumption",
        capW: 8000,
        windowStart: 100,
        windowEnd: 110,
        commitment,
      });
      expect(r.type, JSON.stringify(r)).to.equal("allowanceIssued");
      expect(r.type === "allowanceIssued" && r.vault).to.equal(await consumptionVault.getAddress());
      expect((await syncAllowanceTree(consumptionVault)).leaves).to.deep.equal([commitment]);
    });

    it("counts an issued cap against the household's limit per interval of its window", async () => {
      const over = await client("h1").requestAllowance({
        requestId: rid(),
        direction: "consumption",
        capW: 1,
        windowStart: 110,
        windowEnd: 120,
        commitment: commitmentOf(1n, 110n, 120n),
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
        commitment: commitmentOf(8000n, 111n, 120n),
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
        commitment: commitmentOf(5000n, 100n, 105n),
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
        commitment: commitmentOf(6000n, 105n, 108n),
      });
      expect(feeder.type === "deskRefused" && feeder.reason).to.equal("OVER_FEEDER_RATING");
      const pvCap = await client("h2").requestAllowance({
        requestId: rid(),
        direction: "production",
        capW: 6001,
        windowStart: 106,
        windowEnd: 108,
        commitment: commitmentOf(6001n, 106n, 108n),
      });
      expect(pvCap.type === "deskRefused" && pvCap.reason).to.equal("OVER_PV_CAPACITY");
      const ok = await client("h2").requestAllowance({
        requestId: rid(),
        direction: "production",
        capW: 5000,
        windowStart: 105,
        windowEnd: 108,
        commitment: commitmentOf(5000n, 105n, 108n),
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
          commitment: commitmentOf(100n, 10n, 20n),
          ...over,
        });
      const taken = (await syncAllowanceTree(consumptionVault)).leaves[0] as bigint;
      const cases: [string, Promise<unknown>, string][] = [
        ["a zero commitment", ask({ commitment: 0n }), "INVALID_COMMITMENT"],
        ["a commitment outside the field", ask({ commitment: ZK.fieldModulus }), "INVALID_COMMITMENT"],
        ["a commitment issued before", ask({ commitment: taken }), "COMMITMENT_TAKEN"],
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
        commitment: commitmentOf(100n, 30n, 31n).toString(),
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
      const raw: [string, Uint8Array, string][] = [
        ["bytes that are no envelope", new TextEncoder().encode("hello"), "MALFORMED"],
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
