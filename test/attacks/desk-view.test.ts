import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { readDeskView } from "../../analysis/attack-inputs";
import { type DeskView, deskView, matchDeskView } from "../../attacks/heuristic-desk-view";
import { addr, LedgerBuilder } from "../../attacks/ledger-builder";
import { isError } from "../../common/errors";

const [p1, p2, p3, p4] = ["p1", "p2", "p3", "p4"].map((s) => addr(s).toLowerCase()) as [string, string, string, string];
const back = (pseudonym: string, denomination: string, count: number, atMs = 10) => ({
  pseudonym,
  denomination,
  count,
  atMs,
});
const redeem = (household: string, denomination: string, count: number, atMs = 100) => ({
  household,
  denomination,
  count,
  atMs,
});
const scores = (view: DeskView) =>
  Object.fromEntries(matchDeskView(view).links.map((l) => [[l.a, l.b].sort().join("~"), l.score]));

describe("heuristic-desk-view", () => {
  it("finds the one assignment of deposit-backs to redemptions and links its pseudonyms with certainty", () => {
    // A redeems 1 x 10000 + 3 x 1000: only p1 (10000 + 1000) with p2 (2 x 1000) gives that; p3 is B's.
    const view: DeskView = {
      depositBacks: [back(p1, "10000", 1), back(p1, "1000", 1), back(p2, "1000", 2), back(p3, "1000", 1)],
      redemptions: [redeem("A", "10000", 1), redeem("A", "1000", 3), redeem("B", "1000", 1)],
    };
    const m = matchDeskView(view);
    expect(m).to.include({ solutions: 1, exhaustive: true });
    expect(m.assigned.get(p3)).to.deep.equal({ household: "B", probability: 1 });
    expect(scores(view)).to.deep.equal({ [[p1, p2].sort().join("~")]: 1 });
    expect(deskView.link(new LedgerBuilder().build(), { deskView: view })).to.deep.equal(m.links);
    expect(deskView.link(new LedgerBuilder().build(), {})).to.deep.equal([]);
  });

  it("scores a pair by the share of consistent assignments that put it together", () => {
    // Two households of 2 x 1000 and four pseudonyms of 1 x 1000: 6 assignments, any pair together in 2.
    const view: DeskView = {
      depositBacks: [p1, p2, p3, p4].map((p) => back(p, "1000", 1)),
      redemptions: [redeem("A", "1000", 2), redeem("B", "1000", 2)],
    };
    const m = matchDeskView(view);
    expect(m.solutions).to.equal(6);
    expect(m.links.map((l) => l.score)).to.deep.equal([1 / 3, 1 / 3, 1 / 3]);
  });

  it("never gives a household a deposit-back made after its last redemption", () => {
    const view: DeskView = {
      depositBacks: [back(p1, "1000", 1, 10), back(p2, "1000", 1, 500)],
      redemptions: [redeem("A", "1000", 1, 100), redeem("B", "1000", 1, 900)],
    };
    const m = matchDeskView(view);
    expect(m.solutions).to.equal(1);
    expect(m.assigned.get(p1)?.household).to.equal("A");
    expect(m.assigned.get(p2)?.household).to.equal("B");
  });

  it("leaves unredeemed pseudonyms out, links nothing when no assignment fits, and says when a limit cut the search", () => {
    const leftover = matchDeskView({
      depositBacks: [back(p1, "1000", 2), back(p2, "1000", 5)],
      redemptions: [redeem("A", "1000", 2)],
    });
    expect(leftover.solutions).to.equal(1);
    expect(leftover.assigned.has(p2)).to.equal(false);
    const none = matchDeskView({ depositBacks: [back(p1, "1000", 2)], redemptions: [redeem("A", "1000", 3)] });
    expect(none).to.include({ solutions: 0, exhaustive: true });
    expect(none.links).to.deep.equal([]);
    const cut = matchDeskView(
      { depositBacks: [p1, p2, p3, p4].map((p) => back(p, "1000", 1)), redemptions: [redeem("A", "1000", 2)] },
      { maxSolutions: 2, maxSteps: 1_000 },
    );
    expect(cut).to.include({ solutions: 2, exhaustive: false });
    expect(cut.links.every((l) => l.reason.includes("+ assignments"))).to.equal(true);
  });

  it("reads desk-view.json, naming what is wrong with a bad one", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petra-desk-view-"));
    try {
      const file = path.join(dir, "desk-view.json");
      const good: DeskView = { depositBacks: [back(p1, "1000", 2)], redemptions: [redeem("A", "1000", 2)] };
      fs.writeFileSync(file, JSON.stringify(good));
      expect(readDeskView(file)).to.deep.equal(good);
      const bad: [unknown, RegExp][] = [
        ["{", /cannot read it as JSON/],
        [{ depositBacks: [] }, /arrays depositBacks and redemptions/],
        [{ ...good, depositBacks: [{ ...back(p1, "1000", 2), pseudonym: "h1" }] }, /depositBacks\[0\]\.pseudonym/],
        [{ ...good, redemptions: [{ ...redeem("A", "1000", 2), count: 0 }] }, /redemptions\[0\]\.count/],
        [
          { ...good, redemptions: [{ ...redeem("A", "1000", 2), denomination: 1000 }] },
          /redemptions\[0\]\.denomination/,
        ],
      ];
      for (const [content, message] of bad) {
        fs.writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
        try {
          readDeskView(file);
          expect.fail(`accepted ${JSON.stringify(content)}`);
        } catch (e) {
          expect(isError(e, "INVALID_ARGUMENT"), String(e)).to.equal(true);
          expect((e as Error).message).to.match(message);
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
