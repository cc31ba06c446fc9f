import { expect } from "chai";
import { checkWithdrawal, type IntervalUsage, type PolicyInput, usageOf } from "../../agents/dso-policy";

const limits = { pvCapacityW: 5_000, connectionLimitW: 8_000, feederRatingW: 10_000 };

function input(over: Partial<PolicyInput> = {}): PolicyInput {
  return {
    assets: [],
    financial: 0,
    balance: 1_000,
    limits,
    householdUsage: new Map(),
    feederUsage: new Map(),
    ...over,
  };
}

const usage = (entries: [number, Partial<IntervalUsage>][]) =>
  new Map(entries.map(([t, u]) => [t, { productionW: 0, consumptionW: 0, ...u }]));

describe("dso-policy # checkWithdrawal", () => {
  it("accepts a request within every limit and reports the usage it adds", () => {
    const v = checkWithdrawal(
      input({
        assets: [
          { powerW: 5_000, start: 1, end: 2 },
          { powerW: -8_000, start: 2, end: 2 },
        ],
        financial: 1_000,
      }),
    );
    expect(v.ok).to.equal(true);
    if (!v.ok) return;
    expect([...v.added.entries()]).to.deep.equal([
      [1, { productionW: 5_000, consumptionW: 0 }],
      [2, { productionW: 5_000, consumptionW: 8_000 }],
    ]);
  });

  it("refuses production over PV capacity, counting what was withdrawn before", () => {
    const v = checkWithdrawal(
      input({ assets: [{ powerW: 2_000, start: 7, end: 9 }], householdUsage: usage([[8, { productionW: 3_001 }]]) }),
    );
    expect(v.ok ? "ok" : v.reason).to.equal("OVER_PV_CAPACITY");
    expect(v.ok ? "" : v.message)
      .to.contain("interval 8")
      .and.contain("5000 W");
    expect(
      checkWithdrawal(
        input({ assets: [{ powerW: 2_000, start: 7, end: 9 }], householdUsage: usage([[8, { productionW: 3_000 }]]) }),
      ).ok,
    ).to.equal(true);
  });

  it("sums overlapping assets of one request against PV capacity", () => {
    const v = checkWithdrawal(
      input({
        assets: [
          { powerW: 3_000, start: 0, end: 1 },
          { powerW: 2_500, start: 1, end: 1 },
        ],
      }),
    );
    expect(v.ok ? "ok" : v.reason).to.equal("OVER_PV_CAPACITY");
  });

  it("refuses consumption over the connection limit", () => {
    const v = checkWithdrawal(input({ assets: [{ powerW: -8_001, start: 0, end: 0 }] }));
    expect(v.ok ? "ok" : v.reason).to.equal("OVER_CONNECTION_LIMIT");
    expect(checkWithdrawal(input({ assets: [{ powerW: -8_000, start: 0, end: 0 }] })).ok).to.equal(true);
  });

  it("does not let production offset consumption against the connection limit", () => {
    const v = checkWithdrawal(
      input({
        assets: [
          { powerW: 5_000, start: 0, end: 0 },
          { powerW: -9_000, start: 0, end: 0 },
        ],
      }),
    );
    expect(v.ok ? "ok" : v.reason).to.equal("OVER_CONNECTION_LIMIT");
  });

  it("refuses a feeder over its rating in either direction", () => {
    const prod = checkWithdrawal(
      input({ assets: [{ powerW: 4_000, start: 5, end: 5 }], feederUsage: usage([[5, { productionW: 6_001 }]]) }),
    );
    expect(prod.ok ? "ok" : prod.reason).to.equal("OVER_FEEDER_RATING");
    expect(prod.ok ? "" : prod.message).to.contain("production");
    const cons = checkWithdrawal(
      input({ assets: [{ powerW: -4_000, start: 5, end: 5 }], feederUsage: usage([[5, { consumptionW: 6_001 }]]) }),
    );
    expect(cons.ok ? "ok" : cons.reason).to.equal("OVER_FEEDER_RATING");
    expect(cons.ok ? "" : cons.message).to.contain("consumption");
    expect(
      checkWithdrawal(
        input({ assets: [{ powerW: 4_000, start: 5, end: 5 }], feederUsage: usage([[5, { productionW: 6_000 }]]) }),
      ).ok,
    ).to.equal(true);
  });

  it("refuses money over the balance", () => {
    const v = checkWithdrawal(input({ financial: 1_001, balance: 1_000 }));
    expect(v.ok ? "ok" : v.reason).to.equal("INSUFFICIENT_BALANCE");
    expect(checkWithdrawal(input({ financial: 1_000, balance: 1_000 })).ok).to.equal(true);
  });

  it("refuses a request that withdraws nothing", () => {
    expect(checkWithdrawal(input()).ok ? "ok" : "refused").to.equal("refused");
  });

  it("refuses a request spanning more intervals than the cap", () => {
    const v = checkWithdrawal(input({ assets: [{ powerW: 1, start: 0, end: 1_000_000_000 }] }), 672);
    expect(v.ok ? "ok" : v.reason).to.equal("INVALID_REQUEST");
    expect(usageOf([{ powerW: 1, start: 0, end: 671 }], 672).ok).to.equal(true);
  });
});
