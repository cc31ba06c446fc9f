import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { AccountBook, type NewRequest } from "../../agents/account-book";
import { checkWithdrawal } from "../../agents/dso-policy";
import { HouseholdRegistry } from "../../agents/household-registry";
import { isError } from "../../common/errors";
import { testGrid } from "../fixtures/dso";
import { expectExactly } from "../fixtures/exactly";

const MARKET = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const ANON = "0x00000000000000000000000000000000000000a1";
const registry = new HouseholdRegistry(testGrid().registry);

function req(over: Partial<NewRequest> = {}): NewRequest {
  return {
    householdId: "h1",
    feederId: "f1",
    requestId: "r1",
    bodyHash: "hash-1",
    anonAddress: ANON,
    assets: [{ powerW: 3_000, start: 4, end: 5 }],
    financial: 400,
    fundGas: false,
    ...over,
  };
}

const policy =
  (r: NewRequest) =>
  (s: {
    balance: number;
    householdUsage: Map<number, { productionW: number; consumptionW: number }>;
    feederUsage: Map<number, { productionW: number; consumptionW: number }>;
  }) =>
    checkWithdrawal({
      assets: r.assets,
      financial: r.financial,
      balance: s.balance,
      limits: { pvCapacityW: 5_000, connectionLimitW: 8_000, feederRatingW: 10_000 },
      householdUsage: s.householdUsage,
      feederUsage: s.feederUsage,
    });

describe("AccountBook", () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "petra-book-"));
    path = join(dir, "book.sqlite");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const open = () => {
    const b = new AccountBook({ path, marketAddress: MARKET, chainId: 31337 });
    b.ensureHouseholds(registry);
    return b;
  };

  it("reserves a request: debits money, binds the address, and answers a re-send with the same row", () => {
    const book = open();
    const r = req();
    const first = book.reserve(r, 1, policy(r));
    expect(first).to.deep.include({ kind: "reserved", balance: 999_600 });
    expect(book.balance("h1")).to.equal(999_600);
    expect(book.householdOf(ANON)).to.equal("h1");
    const again = book.reserve(r, 2, policy(r));
    expect(again.kind).to.equal("existing");
    expect(book.balance("h1")).to.equal(999_600);
    book.close();
  });

  it("counts reserved usage against later requests of the household and the feeder", () => {
    const book = open();
    const a = req();
    book.reserve(a, 1, policy(a));
    const b = req({ requestId: "r2", assets: [{ powerW: 2_001, start: 5, end: 5 }], financial: 0 });
    const r = book.reserve(b, 2, policy(b));
    expect(r.kind === "refused" && r.reason).to.equal("OVER_PV_CAPACITY");
    const c = req({
      householdId: "h2",
      requestId: "r1",
      anonAddress: "0x00000000000000000000000000000000000000b2",
      assets: [{ powerW: 7_001, start: 4, end: 4 }],
      financial: 0,
    });
    const rc = book.reserve(c, 3, (s) =>
      checkWithdrawal({
        assets: c.assets,
        financial: 0,
        balance: s.balance,
        limits: { pvCapacityW: 8_000, connectionLimitW: 8_000, feederRatingW: 10_000 },
        householdUsage: s.householdUsage,
        feederUsage: s.feederUsage,
      }),
    );
    expect(rc.kind === "refused" && rc.reason).to.equal("OVER_FEEDER_RATING");
    book.close();
  });

  it("refuses an anonymous address already bound to another household", () => {
    const book = open();
    const a = req();
    book.reserve(a, 1, policy(a));
    const b = req({ householdId: "h2", requestId: "x" });
    const r = book.reserve(b, 2, policy(b));
    expect(r.kind === "refused" && r.reason).to.equal("ADDRESS_TAKEN");
    book.close();
  });

  it("keeps balances and requests across a reopen, and refunds a failed request exactly once", () => {
    let book = open();
    const r = req();
    book.reserve(r, 1, policy(r));
    book.close();
    book = open();
    expect(book.balance("h1")).to.equal(999_600);
    expect(book.unbatchedRequests().map((x) => x.requestId)).to.deep.equal(["r1"]);
    book.failRequest("h1", "r1", "MINT_FAILED", "test", 2);
    book.failRequest("h1", "r1", "MINT_FAILED", "test", 3);
    expect(book.balance("h1")).to.equal(1_000_000);
    expect(book.request("h1", "r1")?.status).to.equal("failed");
    // the usage was released too: the full PV capacity is free again
    const full = req({ requestId: "r3", assets: [{ powerW: 5_000, start: 4, end: 5 }], financial: 0 });
    expect(book.reserve(full, 4, policy(full)).kind).to.equal("reserved");
    book.close();
  });

  it("settles a batch: asset IDs by offset, the row says minted", () => {
    const book = open();
    const a = req();
    const b = req({
      requestId: "r2",
      assets: [
        { powerW: -100, start: 1, end: 1 },
        { powerW: -200, start: 2, end: 2 },
      ],
      financial: 0,
    });
    book.reserve(a, 1, policy(a));
    book.reserve(b, 1, policy(b));
    const id = book.recordBatch(
      [{ hash: "0xaa", kind: "energy", nonce: 7, raw: "0x01" }],
      [
        { householdId: "h1", requestId: "r1", assetOffset: 0 },
        { householdId: "h1", requestId: "r2", assetOffset: 1 },
      ],
      2,
    );
    expect(book.openBatches().map((x) => x.id)).to.deep.equal([id]);
    expect(book.maxSignedNonce()).to.equal(7);
    book.completeBatch(id, { energyAssetIds: ["10", "11", "12"], blocks: new Map([["0xaa", 3]]) }, 3);
    expect(book.request("h1", "r1")?.assetIds).to.deep.equal(["10"]);
    expect(book.request("h1", "r2")?.assetIds).to.deep.equal(["11", "12"]);
    expect(book.openBatches()).to.deep.equal([]);
    book.close();
  });

  it("credits a financial deposit once, even when the same logs are applied twice", () => {
    const book = open();
    const a = req();
    book.reserve(a, 1, policy(a));
    const ev = {
      name: "FinancialDeposited" as const,
      blockNumber: 9,
      logIndex: 0,
      owner: ANON.toUpperCase().replace("0X", "0x"),
      amount: "150",
    };
    book.applyEvents([ev], 9);
    book.applyEvents([ev], 9);
    expect(book.balance("h1")).to.equal(999_750);
    expect(book.logCursor()).to.equal(10);
    book.close();
  });

  it("follows an asset through a split and credits its deposit to the household of the new owner", () => {
    const book = open();
    const a = req();
    book.reserve(a, 1, policy(a));
    book.applyEvents(
      [
        {
          name: "AssetAdded",
          blockNumber: 1,
          logIndex: 0,
          owner: "0x00000000000000000000000000000000000000ff",
          assetId: "0",
          powerW: "500",
          start: "1",
          end: "1",
        },
        {
          name: "AssetSplit",
          blockNumber: 2,
          logIndex: 0,
          parentId: "0",
          assetId: "1",
          owner: ANON,
          powerW: "500",
          start: "1",
          end: "1",
        },
        { name: "AssetDeposited", blockNumber: 3, logIndex: 0, owner: ANON, assetId: "1" },
      ],
      3,
    );
    expect(book.asset("0")?.status).to.equal("retired");
    expectExactly(book.asset("1"), { owner: ANON, status: "deposited" });
    expect(book.energyDeposits("h1").map((d) => [d.assetId, d.powerW])).to.deep.equal([["1", "500"]]);
    book.close();
  });

  it("refuses to open a book written for another market", () => {
    open().close();
    try {
      new AccountBook({ path, marketAddress: "0x0000000000000000000000000000000000000001", chainId: 31337 });
      expect.fail("opened");
    } catch (e) {
      expect(isError(e, "ACCOUNT_BOOK_MISMATCH")).to.equal(true);
    }
  });

  it("remembers nonces across a reopen", () => {
    let book = open();
    expect(book.acceptNonce("k", "n1", 100, 0)).to.equal(true);
    book.close();
    book = open();
    expect(book.acceptNonce("k", "n1", 100, 0)).to.equal(false);
    expect(book.acceptNonce("k", "n2", 100, 0)).to.equal(true);
    book.close();
  });
});
