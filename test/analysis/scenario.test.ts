import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { loadScenario, parseScenario, resolveScenario } from "../../analysis/scenario";
import { isError } from "../../common/errors";

const caseStudy = () => JSON.parse(fs.readFileSync(path.join(__dirname, "../../scenarios/case-study-9.json"), "utf8"));

function expectScenarioError(raw: unknown, field: string) {
  try {
    resolveScenario(parseScenario(raw, "test.json"), "test.json");
    expect.fail(`accepted a scenario with a bad ${field}`);
  } catch (e) {
    expect(isError(e, "INVALID_SCENARIO"), String(e)).to.equal(true);
    expect((e as Error).message).to.contain(`test.json: ${field}:`);
    expect((e as { info: { field: string } }).info.field).to.equal(field);
  }
}

describe("scenario # case-study-9", () => {
  const s = loadScenario("case-study-9");

  it("has the paper's 2 producers and 7 consumers", () => {
    expect(s.households).to.have.length(9);
    const producers = s.households.filter((h) => Object.values(h.trueNetW).every((w) => w > 0));
    const consumers = s.households.filter((h) => Object.values(h.trueNetW).every((w) => w < 0));
    expect(producers).to.have.length(2);
    expect(consumers).to.have.length(7);
  });

  it("trades 2:15 to 5:45 pm: 14 quarter hours from interval 57", () => {
    expect(s.firstInterval).to.equal(57);
    expect(s.intervalCount).to.equal(14);
    expect(Object.keys(s.households[0]?.trueNetW ?? {}).map(Number)).to.deep.equal(
      Array.from({ length: 14 }, (_, i) => 57 + i),
    );
  });

  it("reads the profile as kW: the big producer makes 79.5 kW at 2:15 pm", () => {
    const big = s.households.find((h) => h.column === "1/2");
    expect(big?.trueNetW[57]).to.equal(79_500);
    expect(s.households.find((h) => h.column === "4/5")?.trueNetW[57]).to.equal(-8_800);
  });

  it("tells apart the two columns both named 7/7", () => {
    const ids = s.households.filter((h) => h.column === "7/7").map((h) => h.id);
    expect(new Set(ids).size).to.equal(2);
  });
});

describe("scenario # microgrid-102", () => {
  it("has about 100 homes on 11 feeders, 5 with PV, consumption negative", () => {
    const s = loadScenario("microgrid-102");
    expect(s.households.length).to.be.within(95, 105);
    expect(Object.keys(s.feederRatingW)).to.have.length(11);
    expect(s.households.filter((h) => h.pvCapacityW > 0)).to.have.length(5);
    const consumer = s.households.find((h) => h.pvCapacityW === 0);
    expect(Object.values(consumer?.trueNetW ?? {}).every((w) => w <= 0)).to.equal(true);
  });
});

describe("scenario # validation", () => {
  it("accepts the shipped files", () => {
    expect(() => parseScenario(caseStudy())).to.not.throw();
  });

  // biome-ignore lint/suspicious/noExplicitAny: each case reaches into a different part of the raw JSON
  const cases: [string, (s: Record<string, any>) => void][] = [
    ["name", (s) => delete s.name],
    ["profile.format", (s) => (s.profile.format = "excel")],
    ["profile.file", (s) => (s.profile.file = "data/petra/nope.csv")],
    ["intervalMinutes", (s) => (s.intervalMinutes = 0)],
    ["window.start", (s) => (s.window.start = "25:00")],
    ["window.start", (s) => (s.window.start = "14:10")],
    ["window.intervalCount", (s) => (s.window.intervalCount = 100)],
    ["market.basePriceMicroPerWInterval", (s) => (s.market.basePriceMicroPerWInterval = -1)],
    ["prosumer.rotation.poolSize", (s) => (s.prosumer.rotation = { kind: "pool", poolSize: 0 })],
    ["prosumer.rotation.kind", (s) => (s.prosumer.rotation = { kind: "sometimes" })],
    ["prosumer.gasFunding", (s) => (s.prosumer.gasFunding = "relayer")],
    ["prosumer.gasPerAddressWei", (s) => (s.prosumer.gasPerAddressWei = 1e18)],
    ["prosumer.leadIntervals", (s) => (s.prosumer.leadIntervals = 0)],
    ["prosumer.raceBackoff", (s) => (s.prosumer.raceBackoff = 11)],
    ["prosumer.raceBackoff", (s) => (s.prosumer.raceBackoff = 1.5)],
    ["live.blocks", (s) => (s.live.blocks = "fast")],
    ["live.intervalMs", (s) => (s.live.intervalMs = 2.5)],
    ["(root)", (s) => (s.extra = true)],
  ];
  for (const [field, mutate] of cases) {
    it(`names the field "${field}" when ${mutate.toString().replace(/^\(s\) => /, "")}`, () => {
      const s = caseStudy();
      mutate(s);
      expectScenarioError(s, field);
    });
  }

  it("names the scenario when there is no such file", () => {
    expect(() => loadScenario("no-such-scenario")).to.throw(/scenario: no scenario "no-such-scenario"/);
  });

  it("names the file when it is not JSON", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "petra-scenario-")), "broken.json");
    fs.writeFileSync(file, "{ not json");
    expect(() => loadScenario(file)).to.throw(/broken\.json: not valid JSON/);
  });
});

describe("scenario # generated", () => {
  const generated = (n: 100 | 1000) =>
    JSON.parse(fs.readFileSync(path.join(__dirname, `../../scenarios/generated-${n}.json`), "utf8"));

  it("loads generated-1000 as the same Scenario shape: 1,000 households, 20 feeders, the whole day", () => {
    const s = loadScenario("generated-1000");
    expect(s.households).to.have.length(1000);
    expect(s.firstInterval).to.equal(0);
    expect(s.intervalCount).to.equal(96);
    expect(Object.keys(s.feederRatingW)).to.have.length(20);
    const h = s.households[0];
    expect(Object.keys(h ?? {}).sort()).to.deep.equal([
      "column",
      "connectionLimitW",
      "feeder",
      "id",
      "pvCapacityW",
      "trueNetW",
    ]);
    expect(Object.keys(h?.trueNetW ?? {}).map(Number)).to.deep.equal(Array.from({ length: 96 }, (_, k) => k));
    const pv = s.households.filter((x) => x.pvCapacityW > 0).length;
    expect(pv).to.be.within(250, 350);
    for (const x of s.households) {
      const peakConsumption = Math.max(0, ...Object.values(x.trueNetW).map((w) => -w));
      expect(x.connectionLimitW).to.equal(Math.ceil(peakConsumption * 1.5));
      expect(s.feederRatingW[x.feeder]).to.be.greaterThan(0);
    }
  });

  it("keeps occupancy, load and PV in groundTruth, consistent with the households' net W", () => {
    const s = loadScenario("generated-100");
    expect(Object.keys(s.groundTruth ?? {})).to.deep.equal(s.households.map((h) => h.id));
    const wrong: string[] = [];
    for (const h of s.households) {
      const t = s.groundTruth?.[h.id];
      for (let k = 0; k < 96; k++) {
        if (h.trueNetW[k] !== (t?.pvW[k] as number) - (t?.loadW[k] as number)) wrong.push(`${h.id} netW[${k}]`);
        if (t?.occupancy[k] !== (t?.occupancyState[k] === 0 ? 0 : 1)) wrong.push(`${h.id} occupancy[${k}]`);
      }
    }
    expect(wrong).to.deep.equal([]);
    expect(loadScenario("case-study-9").groundTruth).to.equal(undefined);
  });

  it("gives generated-100 the first 100 households of generated-1000, and cuts out any window", () => {
    const small = loadScenario("generated-100");
    const big = loadScenario("generated-1000");
    expect(small.households).to.deep.equal(big.households.slice(0, 100));
    const raw = generated(100);
    raw.window = { start: "14:15", intervalCount: 14 };
    const afternoon = resolveScenario(parseScenario(raw, "test.json"), "test.json");
    expect(afternoon.firstInterval).to.equal(57);
    expect(afternoon.households[5]?.trueNetW).to.deep.equal(
      Object.fromEntries(Array.from({ length: 14 }, (_, i) => [57 + i, small.households[5]?.trueNetW[57 + i]])),
    );
  });

  // biome-ignore lint/suspicious/noExplicitAny: each case reaches into a different part of the raw JSON
  const cases: [string, (s: Record<string, any>) => void][] = [
    ["profile.households", (s) => (s.profile.households = 0)],
    ["profile.households", (s) => (s.profile.households = 2.5)],
    ["profile.month", (s) => (s.profile.month = 13)],
    ["profile.dayType", (s) => (s.profile.dayType = "MO")],
    ["profile.seed", (s) => (s.profile.seed = -1)],
    ["profile.seed", (s) => delete s.profile.seed],
    ["profile.pvShare", (s) => (s.profile.pvShare = 1.5)],
    ["profile.feederSize", (s) => (s.profile.feederSize = 0)],
    ["profile.annualKWh", (s) => (s.profile.annualKWh = { min: 6000, max: 1500 })],
    ["profile.annualKWh.min", (s) => (s.profile.annualKWh = { min: -1, max: 1500 })],
    ["profile.latitudeDeg", (s) => (s.profile.latitudeDeg = 80)],
    ["profile.cloudiness", (s) => (s.profile.cloudiness = 2)],
    ["profile", (s) => (s.profile.file = "data/bdew/h25.csv")],
    ["intervalMinutes", (s) => (s.intervalMinutes = 30)],
  ];
  for (const [field, mutate] of cases) {
    it(`names the field "${field}" when ${mutate.toString().replace(/^\(s\) => /, "")}`, () => {
      const s = generated(100);
      if (field === "intervalMinutes") s.window.intervalCount = 48;
      mutate(s);
      expectScenarioError(s, field);
    });
  }
});
