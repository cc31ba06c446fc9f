import { expect } from "chai";
import { SharedMarketBook } from "../../agents/market-book";
import { HouseholdMarketView, type MarketView } from "../../agents/market-view";
import {
  costOf,
  emptyMarketState,
  type MarketEvent,
  type MarketState,
  type ReadonlyMarketState,
  replayMarket,
  ZERO_ADDRESS,
} from "../../attacks/market-replay";
import { createRng, type Rng } from "../../common/rng";
import { expectExactly } from "../fixtures/exactly";

interface Log {
  blockNumber: number;
  logIndex: number;
  ev: MarketEvent;
}

const decode = (l: Log) => l.ev;
const logsOf = (blockNumber: number, events: MarketEvent[]): Log[] =>
  events.map((ev, logIndex) => ({ blockNumber, logIndex, ev }));
const address = (n: number) => `0x${n.toString(16).padStart(40, "0")}`;
const byId = <T>([a]: [bigint, T], [b]: [bigint, T]) => (a < b ? -1 : a > b ? 1 : 0);

/** What a household reads of the market: the open offers with their assets, its own assets, its balances. */
function householdReads(state: ReadonlyMarketState, mine: ReadonlySet<string>) {
  return {
    offers: [...state.offers.entries()]
      .sort(byId)
      .map(([id, o]) => ({ id, ...o, asset: { ...state.assets.get(o.assetID) } })),
    own: [...state.assets.entries()]
      .filter(([, a]) => mine.has(a.owner))
      .sort(byId)
      .map(([id, a]) => ({ id, ...a })),
    balances: [...mine].sort().map((m) => [m, state.balances.get(m)]),
  };
}

/** The ids a prosumer collects from the events a view returns (agents/prosumer.ts #onLogs). */
class OwnIds {
  readonly assets = new Set<bigint>();
  readonly offers = new Set<bigint>();

  take(events: MarketEvent[], mine: ReadonlySet<string>): void {
    for (const ev of events) {
      if (ev.name === "AssetAdded" && mine.has(ev.anonAddress)) this.assets.add(ev.assetID);
      else if (ev.name === "AssetSplit" && mine.has(ev.owner)) this.assets.add(ev.assetID);
      else if (ev.name === "OfferPosted" && this.assets.has(ev.assetID)) this.offers.add(ev.offerID);
    }
  }
}

/**
 * A random market that the contract could have logged: households mint assets and money to
 * pseudonyms they adopt as they go, post asks and bids, rescind them, accept them (with the
 * contract's splits), deposit assets and money. `model` is the market replayed so far.
 */
class RandomMarket {
  readonly model: MarketState = emptyMarketState();
  readonly households: Set<string>[];
  /** Events logged, by name. */
  readonly kinds = new Map<string, number>();
  #nextAddress = 1;
  #nextAsset = 0n;
  #nextOffer = 0n;
  readonly #rng: Rng;

  constructor(rng: Rng, households: number) {
    this.#rng = rng;
    this.households = Array.from({ length: households }, () => new Set<string>());
  }

  /** One block's events; every household's new addresses are in its set before the block exists. */
  block(): MarketEvent[] {
    const rng = this.#rng;
    const events: MarketEvent[] = [];
    const emit = (ev: MarketEvent) => {
      replayMarket([ev], this.model, { prune: true });
      events.push(ev);
      this.kinds.set(ev.name, (this.kinds.get(ev.name) ?? 0) + 1);
    };
    const { assets, offers, balances } = this.model;
    const free = () => [...assets].filter(([, a]) => !a.locked && a.owner !== ZERO_ADDRESS);
    const balance = (who: string) => balances.get(who) ?? 0n;
    for (let n = rng.int(0, 7); n > 0; n--) {
      const kind = rng.int(0, 10);
      if (kind <= 2) {
        const h = rng.pick(this.households);
        let who: string;
        if (h.size === 0 || rng.next() < 0.4) {
          who = address(this.#nextAddress++);
          h.add(who);
        } else who = rng.pick([...h]);
        const powerW = BigInt((rng.next() < 0.5 ? 1 : -1) * rng.int(1, 20) * 100);
        const start = BigInt(rng.int(0, 5));
        emit({
          name: "AssetAdded",
          anonAddress: who,
          assetID: this.#nextAsset++,
          powerW,
          start,
          end: start + BigInt(rng.int(0, 2)),
        });
        if (powerW < 0n && rng.next() < 0.8)
          emit({ name: "FinancialAdded", anonAddress: who, amount: BigInt(rng.int(1, 400_000)) });
      } else if (kind <= 4) {
        const price = BigInt(rng.int(1, 9));
        const ok = free().filter(
          ([, a]) => a.powerW > 0n || costOf(price, a.powerW, a.start, a.end) <= balance(a.owner),
        );
        if (ok.length === 0) continue;
        const [assetID] = rng.pick(ok);
        emit({ name: "OfferPosted", offerID: this.#nextOffer++, assetID, priceMicroPerWInterval: price });
      } else if (kind === 5) {
        const open = [...offers].filter(([, o]) => o.state === "Open");
        if (open.length === 0) continue;
        emit({ name: "OfferRescinded", offerID: rng.pick(open)[0] });
      } else if (kind <= 7) {
        const open = [...offers].filter(([, o]) => o.state === "Open");
        if (open.length === 0) continue;
        const [offerID, o] = rng.pick(open);
        const a = assets.get(o.assetID);
        if (a === undefined) throw new Error("test market: an open offer without its asset");
        const fits = free()
          .map(([id, b]) => {
            const s = a.start > b.start ? a.start : b.start;
            const e = a.end < b.end ? a.end : b.end;
            const absA = a.powerW < 0n ? -a.powerW : a.powerW;
            const absB = b.powerW < 0n ? -b.powerW : b.powerW;
            const tradedW = absA < absB ? absA : absB;
            return { id, b, s, e, absA, absB, tradedW, payment: costOf(o.priceMicroPerWInterval, tradedW, s, e) };
          })
          .filter(
            (x) =>
              a.powerW > 0n !== x.b.powerW > 0n && x.s <= x.e && (a.powerW < 0n || x.payment <= balance(x.b.owner)),
          );
        if (fits.length === 0) continue;
        const { id, b, s, e, absA, absB, tradedW, payment } = rng.pick(fits);
        const [am, bm] = [{ ...a }, { ...b }];
        emit({ name: "OfferAccepted", offerID, assetID: id, payment });
        // As the contract's _splitInto: the traded part to the counterparty, the rest to the owner.
        const split = (parentID: bigint, x: typeof am, absX: bigint, counterparty: string) => {
          const sign = x.powerW > 0n ? 1n : -1n;
          const part = (owner: string, powerW: bigint, start: bigint, end: bigint) =>
            emit({ name: "AssetSplit", parentID, assetID: this.#nextAsset++, owner, powerW, start, end });
          part(counterparty, sign * tradedW, s, e);
          if (x.start < s) part(x.owner, x.powerW, x.start, s - 1n);
          if (x.end > e) part(x.owner, x.powerW, e + 1n, x.end);
          if (absX > tradedW) part(x.owner, sign * (absX - tradedW), s, e);
        };
        split(o.assetID, am, absA, bm.owner);
        split(id, bm, absB, o.poster);
      } else if (kind === 8) {
        const ok = free();
        if (ok.length === 0) continue;
        const [assetID, a] = rng.pick(ok);
        emit({ name: "AssetDeposited", anonAddress: a.owner, assetID });
      } else if (kind === 9) {
        const rich = [...balances].filter(([, v]) => v > 0n);
        if (rich.length === 0) continue;
        const [who, v] = rng.pick(rich);
        emit({ name: "FinancialDeposited", anonAddress: who, amount: BigInt(rng.int(1, Number(v))) });
      } else emit({ name: "GasFunded", anonAddress: address(this.#nextAddress - 1), amountWei: 1n });
    }
    return events;
  }

  get openOffers(): number {
    return [...this.model.offers.values()].filter((o) => o.state === "Open").length;
  }

  get postedOffers(): bigint {
    return this.#nextOffer;
  }
}

/** One household with a view on the book and one of its own, fed the same logs at the same moments. */
interface Household {
  mine: Set<string>;
  book: MarketView;
  alone: HouseholdMarketView;
  bookIds: OwnIds;
  aloneIds: OwnIds;
  /** Blocks (with logs) not yet delivered. */
  pending: Log[][];
  last: Log[];
}

function deliver(h: Household, logs: Log[]): void {
  h.bookIds.take(h.book.apply(logs, decode), h.mine);
  h.aloneIds.take(h.alone.apply(logs, decode), h.mine);
  h.last = logs;
}

/** Compared as text: chai's deep equality on thousands of reads would take minutes. */
const text = (x: unknown) => JSON.stringify(x, (_, v) => (typeof v === "bigint" ? `${v}n` : v), 1);

function expectSameReads(h: Household, what: string, offerIds: bigint): void {
  const reads = (v: MarketView, ids: OwnIds) => {
    const state = v.state;
    // Looked up one by one too, closed and never-seen offers among them.
    const offerIdsSoFar = Array.from({ length: Number(offerIds) + 2 }, (_, i) => BigInt(i));
    return text({
      position: v.position,
      ...householdReads(state, h.mine),
      offersById: offerIdsSoFar.map((id) => state.offers.get(id) ?? null),
      ownById: [...h.aloneIds.assets].map((id) => state.assets.get(id) ?? null),
      ownAssetIds: [...ids.assets],
      ownOfferIds: [...ids.offers],
    });
  };
  expect(reads(h.book, h.bookIds), what).to.equal(reads(h.alone, h.aloneIds));
}

/**
 * Runs a random market through one book and, per household, a view on it and a view of its own,
 * each household a random 0 to `maxLag` blocks behind the head, sometimes taking several blocks at
 * once or a block twice; checks after every delivery that both read the same market.
 */
function run(seed: number, opts: { households: number; blocks: number; maxLag: number; lateStart?: number }) {
  const rng = createRng(seed);
  const market = new RandomMarket(rng.fork("market"), opts.households);
  const book = new SharedMarketBook();
  const households: Household[] = market.households.map((mine) => ({
    mine,
    book: book.view(mine),
    alone: new HouseholdMarketView({ isMine: (a) => mine.has(a) }),
    bookIds: new OwnIds(),
    aloneIds: new OwnIds(),
    pending: [],
    last: [],
  }));
  const deliveries = rng.fork("deliveries");
  let checks = 0;
  let behind = 0;
  let unclaimed = 0;
  for (let n = 1; n <= opts.blocks; n++) {
    const events = market.block();
    // Blocks without market logs reach no watcher, as in simulated mode.
    if (events.length === 0) continue;
    const logs = logsOf(n, events);
    book.apply(logs, decode);
    unclaimed = Math.max(unclaimed, book.size.orphans);
    households.forEach((h, i) => {
      h.pending.push(logs);
      // A household that starts late gets its history in one batch, as from eth_getLogs.
      if (i === 0 && n < (opts.lateStart ?? 0)) return;
      const lag = deliveries.int(0, opts.maxLag);
      const due = h.pending.filter((b) => (b[0] as Log).blockNumber <= n - lag);
      if (due.length > 0) {
        h.pending = h.pending.slice(due.length);
        if (deliveries.next() < 0.7) for (const b of due) deliver(h, b);
        else deliver(h, due.flat());
      } else if (h.last.length > 0 && deliveries.next() < 0.1) deliver(h, h.last);
      expectSameReads(h, `seed ${seed}, household ${i} at block ${n}`, market.postedOffers);
      checks++;
      if ((h.book.position?.blockNumber ?? -1) < n) behind++;
    });
  }
  // Everyone catches up: only open offers and live assets are left in the book.
  for (const h of households) {
    deliver(h, h.pending.flat());
    h.pending = [];
    expectSameReads(h, `seed ${seed}, caught up`, market.postedOffers);
  }
  book.apply(logsOf(opts.blocks + 1, [{ name: "MinterSet", minter: address(0), allowed: true }]), decode);
  expect(book.size.offers, "offers kept").to.equal(market.openOffers);
  expect(book.size.assets, "assets kept").to.equal(market.model.assets.size);
  expect(book.size.orphans, "unclaimed events kept").to.equal(0);
  return { checks, behind, unclaimed, market };
}

const SELLER = address(0x51);
const BUYER = address(0xb1);
const OTHER = address(0x07);

describe("SharedMarketBook # each household's view on one book reads what a view of its own reads", function () {
  this.timeout(120_000);

  it("on random markets, with households at different blocks, late, batched and repeated deliveries", () => {
    let checks = 0;
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const r = run(seed, { households: 10, blocks: 160, maxLag: 3, lateStart: 40 });
      checks += r.checks;
      // Households were behind the head, and adopted addresses the book had already minted to.
      expect(r.behind, `seed ${seed}: checks behind the head`).to.be.greaterThan(r.checks / 2);
      expect(r.unclaimed, `seed ${seed}: events before their address was registered`).to.be.greaterThan(0);
      for (const name of ["OfferPosted", "AssetSplit", "OfferAccepted", "OfferRescinded", "AssetDeposited"])
        expect(r.market.kinds.get(name), `seed ${seed}: ${name}`).to.be.greaterThan(20);
      expect(r.market.kinds.get("FinancialDeposited"), `seed ${seed}`).to.be.greaterThan(0);
    }
    expect(checks).to.be.greaterThan(5000);
  });

  it("shows a household a block behind the offer the head block accepted, with its asset", () => {
    const book = new SharedMarketBook();
    const [seller, buyer, other] = [SELLER, BUYER, OTHER].map((a) => book.view(new Set([a])));
    const blocks = [
      logsOf(1, [
        { name: "AssetAdded", anonAddress: SELLER, assetID: 1n, powerW: 1000n, start: 10n, end: 10n },
        { name: "AssetAdded", anonAddress: BUYER, assetID: 2n, powerW: -600n, start: 10n, end: 10n },
        { name: "FinancialAdded", anonAddress: BUYER, amount: 10_000n },
      ]),
      logsOf(2, [{ name: "OfferPosted", offerID: 1n, assetID: 1n, priceMicroPerWInterval: 5n }]),
      logsOf(3, [
        { name: "OfferAccepted", offerID: 1n, assetID: 2n, payment: 3_000n },
        { name: "AssetSplit", parentID: 1n, assetID: 3n, owner: BUYER, powerW: 600n, start: 10n, end: 10n },
        { name: "AssetSplit", parentID: 1n, assetID: 4n, owner: SELLER, powerW: 400n, start: 10n, end: 10n },
        { name: "AssetSplit", parentID: 2n, assetID: 5n, owner: SELLER, powerW: -600n, start: 10n, end: 10n },
      ]),
    ];
    for (const b of blocks) book.apply(b, decode);
    for (const v of [seller, buyer, other]) v.apply([...(blocks[0] ?? []), ...(blocks[1] ?? [])], decode);
    expect(buyer.apply(blocks[2] ?? [], decode).map((e) => e.name)).to.deep.equal(["OfferAccepted", "AssetSplit"]);
    expect(buyer.state.offers.size).to.equal(0);
    expect(buyer.state.assets.get(1n)).to.equal(undefined);
    expect(buyer.state.balances.get(BUYER)).to.equal(7_000n);
    // The other household and the seller are a block behind: the offer is open, the asset on it.
    const onOffer = { owner: SELLER, powerW: 1000n, start: 10n, end: 10n, locked: true };
    expect(other.state.offers.get(1n)).to.deep.equal({
      poster: SELLER,
      assetID: 1n,
      priceMicroPerWInterval: 5n,
      state: "Open",
    });
    expect(other.state.assets.get(1n)).to.deep.equal(onOffer);
    expect([...other.state.assets.keys()]).to.deep.equal([1n]);
    // The seller reads its own asset, the object it alone holds and changes.
    const own = seller.state.assets.get(1n);
    expect(own).to.deep.equal(onOffer);
    expect(Object.isFrozen(own)).to.equal(false);
    expect(Object.isFrozen(other.state.assets.get(1n))).to.equal(true);
    seller.apply(blocks[2] ?? [], decode);
    expect(own?.owner, "retired").to.equal(ZERO_ADDRESS);
    expect(seller.state.balances.get(SELLER)).to.equal(3_000n);
    expect([...seller.state.assets.keys()]).to.deep.equal([4n, 5n]);
    // Closed offers are kept while a view may still read them open, and forgotten once none can.
    expect(book.size.offers).to.equal(1);
    other.apply(blocks[2] ?? [], decode);
    book.apply(logsOf(4, [{ name: "MinterSet", minter: OTHER, allowed: true }]), decode);
    expect(book.size.offers).to.equal(0);
    expect(other.state.offers.get(1n)).to.equal(undefined);
  });

  it("gives a household the events about an address it adopted after the book applied them", () => {
    const book = new SharedMarketBook();
    const mine = new Set<string>();
    const view = book.view(mine);
    const head = book.view(new Set([OTHER]));
    const b1 = logsOf(1, [{ name: "AssetAdded", anonAddress: OTHER, assetID: 1n, powerW: 100n, start: 1n, end: 1n }]);
    const b2 = logsOf(2, [
      { name: "AssetAdded", anonAddress: BUYER, assetID: 2n, powerW: -100n, start: 1n, end: 1n },
      { name: "FinancialAdded", anonAddress: BUYER, amount: 500n },
    ]);
    book.apply(b1, decode);
    view.apply(b1, decode);
    book.apply(b2, decode);
    head.apply([...b1, ...b2], decode);
    // The household adopted BUYER before the mint to it was mined, but its view has not applied a log since.
    mine.add(BUYER);
    expect(view.apply(b2, decode).map((e) => e.name)).to.deep.equal(["AssetAdded", "FinancialAdded"]);
    expectExactly(view.state.assets.get(2n), { owner: BUYER, powerW: -100n, start: 1n, end: 1n, locked: false });
    expect(view.state.balances.get(BUYER)).to.equal(500n);
    expect(book.size.orphans).to.equal(0);
  });

  it("keeps a closed offer until every view is past its block, and only that; a stopped view holds nothing", () => {
    const market = new RandomMarket(createRng(11), 6);
    const book = new SharedMarketBook({ maxLagBlocks: 8 });
    const views = market.households.map((mine) => book.view(mine));
    const closedIn = new Map<bigint, number>();
    const sent: Log[][] = [];
    for (let n = 1; n <= 300; n++) {
      const events = market.block();
      if (events.length === 0) continue;
      const logs = logsOf(n, events);
      for (const ev of events)
        if (ev.name === "OfferAccepted" || ev.name === "OfferRescinded") closedIn.set(ev.offerID, n);
      book.apply(logs, decode);
      // The book prunes as it is fed: to the lowest block a view is at, of those at most 8 behind.
      const floor = n - 8;
      const horizon = Math.min(n, ...views.map((v) => v.position?.blockNumber ?? -1).filter((b) => b >= floor));
      let kept = 0;
      for (let id = 0n; id < market.postedOffers; id++) if ((closedIn.get(id) ?? Infinity) > horizon) kept++;
      expect(book.size.offers, `block ${n}`).to.equal(kept);
      sent.push(logs);
      // Household 0 stops watching at block 50; the others are one to three blocks with logs behind.
      views.forEach((v, i) => {
        if (i === 0 && n > 50) return;
        const lag = 1 + (i % 3);
        const at = sent.length - 1 - lag;
        if (at >= 0) v.apply(sent[at] as Log[], decode);
      });
    }
    expect(closedIn.size).to.be.greaterThan(100);
    expect(book.size.assets).to.equal(market.model.assets.size);
  });

  it("refuses a view ahead of its book and an address two households claim", () => {
    const book = new SharedMarketBook();
    const b1 = logsOf(1, [{ name: "FinancialAdded", anonAddress: OTHER, amount: 1n }]);
    expect(() => book.view(new Set([BUYER])).apply(b1, decode)).to.throw(/before the book/);
    book.apply(b1, decode);
    book.view(new Set([OTHER])).apply(b1, decode);
    expect(() => book.view(new Set([OTHER])).apply(b1, decode)).to.throw(/two households/);
  });
});
