import { expect } from "chai";
import type { Link } from "../../attacks/heuristic";
import { assetShape } from "../../attacks/heuristic-asset-shape";
import { behaviour } from "../../attacks/heuristic-behaviour";
import { dsoView } from "../../attacks/heuristic-dso-view";
import { gasFunding } from "../../attacks/heuristic-gas-funding";
import { mintBatch } from "../../attacks/heuristic-mint-batch";
import { mixerMatching } from "../../attacks/heuristic-mixer";
import { networkObserver } from "../../attacks/heuristic-network";
import { addr, DSO, LedgerBuilder } from "../../attacks/ledger-builder";

const pairs = (links: Link[]) => links.map((l) => [l.a, l.b].sort().join("~")).sort();
const pair = (x: string, y: string) => [x.toLowerCase(), y.toLowerCase()].sort().join("~");

describe("heuristic-gas-funding", () => {
  it("links a fresh address to the sender of its first ether, but not to later senders or the DSO", () => {
    const [main, anon1, anon2, other] = ["h1-main", "h1-a1", "h1-a2", "h2-main"].map(addr) as string[];
    const ds = new LedgerBuilder()
      .fund(main!, anon1!)
      .fund(other!, anon1!) // not the first: ignored
      .fund(DSO, anon2!) // the DSO funds everyone: no household information
      .build();
    expect(pairs(gasFunding.link(ds, {}))).to.deep.equal([pair(main!, anon1!)]);
  });

  it("reads the DSO's fundGas events as first ether: a later transfer to those addresses links nothing", () => {
    const [main, anon1, anon2, anon3] = ["h1-main", "h1-a1", "h1-a2", "h1-a3"].map(addr) as string[];
    const ds = new LedgerBuilder()
      .fundGasBatch([anon1!, anon2!])
      .fund(main!, anon1!) // not the first: the DSO's batch was
      .fund(main!, anon3!)
      .build();
    expect(pairs(gasFunding.link(ds, {}))).to.deep.equal([pair(main!, anon3!)]);
  });
});

describe("heuristic-mint-batch", () => {
  it("links addresses minted together, weaker as the batch grows", () => {
    const [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map(addr) as string[];
    const ds = new LedgerBuilder()
      .mint([
        { to: a!, powerW: -100, start: 1 },
        { to: b!, powerW: -200, start: 1 },
      ])
      .mint([
        { to: c!, powerW: 1, start: 1 },
        { to: d!, powerW: 2, start: 1 },
        { to: e!, powerW: 3, start: 1 },
      ])
      .build();
    const links = mintBatch.link(ds, {});
    expect(links.find((l) => pair(l.a, l.b) === pair(a!, b!))?.score).to.equal(1);
    expect(links.filter((l) => [c, d, e].includes(l.a) || [c, d, e].includes(l.b)).map((l) => l.score)).to.deep.equal([
      0.5, 0.5,
    ]);
  });

  it("leaves relayers out: a relayed withdrawal credits recipient and relayer fee in one transaction", () => {
    const [r1, r2, relayer] = ["r1", "r2", "relayer"].map(addr) as string[];
    const ds = new LedgerBuilder()
      .mixerWithdrawal(r1!, relayer!, 10n, 1n)
      .mixerWithdrawal(r2!, relayer!, 10n, 1n)
      .build();
    expect(ds.events.filter((e) => e.event.name === "FinancialAdded")).to.have.length(4);
    expect(mintBatch.link(ds, {})).to.deep.equal([]);
  });
});

describe("heuristic-asset-shape", () => {
  it("links addresses minted the same rare power and ignores common values", () => {
    const x = ["x1", "x2"].map(addr);
    const common = ["c1", "c2", "c3", "c4", "c5"].map(addr);
    const b = new LedgerBuilder()
      .mint([{ to: x[0]!, powerW: -1234, start: 1 }])
      .mint([{ to: x[1]!, powerW: -1234, start: 2 }]);
    for (const c of common) b.mint([{ to: c, powerW: -500, start: 3 }]);
    expect(pairs(assetShape().link(b.build(), {}))).to.deep.equal([pair(x[0]!, x[1]!)]);
  });
});

describe("heuristic-behaviour", () => {
  it("links the two pseudonyms of a household whose size and gas price set it apart", () => {
    const [h1a, h1b, h2a, h2b] = ["h1a", "h1b", "h2a", "h2b"].map(addr) as string[];
    const ds = new LedgerBuilder()
      .mint([{ to: h1a!, powerW: -300, start: 1 }])
      .call(h1a!, 7_000_000_000n)
      .mint([{ to: h2a!, powerW: -4000, start: 1 }])
      .call(h2a!, 1_000_000_000n)
      .mint([{ to: h1b!, powerW: -310, start: 2 }])
      .call(h1b!, 7_000_000_000n)
      .mint([{ to: h2b!, powerW: -3950, start: 2 }])
      .call(h2b!, 1_000_000_000n)
      .build();
    const links = behaviour({ maxDistance: 0.2 }).link(ds, {});
    expect(pairs(links)).to.include(pair(h1a!, h1b!));
    expect(pairs(links)).to.include(pair(h2a!, h2b!));
    expect(pairs(links)).to.not.include(pair(h1a!, h2a!));
  });
});

describe("heuristic-network", () => {
  it("links addresses seen from one source and emits nothing without an observer log", () => {
    const [a, b, c] = ["a", "b", "c"].map(addr) as string[];
    const builder = new LedgerBuilder()
      .call(a!)
      .observed("127.0.0.7", a!)
      .call(b!)
      .observed("127.0.0.7", b!)
      .call(c!)
      .observed("127.0.0.8", c!);
    expect(pairs(networkObserver.link(builder.build(), {}))).to.deep.equal([pair(a!, b!)]);
    const silent = new LedgerBuilder().call(a!).call(b!).build();
    expect(networkObserver.link(silent, {})).to.deep.equal([]);
  });
});

describe("heuristic-mixer", () => {
  const relayer = addr("relayer");
  it("matches a lone deposit to the next withdrawal of its denomination", () => {
    const [d, r] = ["dep", "rec"].map(addr) as string[];
    const ds = new LedgerBuilder().mixerDeposit(d!, 10n).wait(60).mixerWithdrawal(r!, relayer, 10n).build();
    const links = mixerMatching().link(ds, {});
    expect(pairs(links)).to.deep.equal([pair(d!, r!)]);
    expect(links[0]?.score).to.equal(1);
  });

  it("spreads confidence over the deposits in the window and ignores deposits outside it", () => {
    const [d1, d2, old, r] = ["d1", "d2", "old", "r"].map(addr) as string[];
    const ds = new LedgerBuilder()
      .mixerDeposit(old!, 10n)
      .wait(7200)
      .mixerDeposit(d1!, 10n)
      .mixerDeposit(d2!, 10n)
      .mixerWithdrawal(r!, relayer, 10n)
      .build();
    const links = mixerMatching({ windowS: 3600 }).link(ds, {});
    expect(links).to.have.length(1);
    expect(pair(links[0]!.a, links[0]!.b)).to.equal(pair(d1!, r!));
    expect(links[0]?.score).to.equal(0.5);
  });

  it("links a unique multi-denomination portfolio", () => {
    const [d, r, x, y] = ["d", "r", "x", "y"].map(addr) as string[];
    const ds = new LedgerBuilder()
      .mixerDeposit(d!, 1n)
      .mixerDeposit(d!, 10n)
      .mixerDeposit(x!, 1n)
      .mixerDeposit(x!, 1n)
      .mixerWithdrawal(y!, relayer, 1n)
      .mixerWithdrawal(r!, relayer, 10n)
      .mixerWithdrawal(r!, relayer, 1n)
      .build();
    const portfolio = mixerMatching()
      .link(ds, {})
      .filter((l) => l.reason.startsWith("same portfolio"));
    expect(pairs(portfolio)).to.deep.equal([pair(d!, r!)]);
  });
});

describe("heuristic-dso-view", () => {
  it("links exactly the DSO's records and nothing without them", () => {
    const [a, b, c] = ["a", "b", "c"].map(addr) as string[];
    const ds = new LedgerBuilder().build();
    const view = new Map([
      [a!, "h1"],
      [b!, "h1"],
      [c!, "h2"],
    ]);
    expect(pairs(dsoView.link(ds, { dsoView: view }))).to.deep.equal([pair(a!, b!)]);
    expect(dsoView.link(ds, {})).to.deep.equal([]);
  });
});
