import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import {
  LATENCY_MODES,
  type LatencySamples,
  latencySamplesFileName,
  parseLatencySamples,
  readLatencySamples,
  writeLatencySamples,
} from "../../agents/latency-samples";
import { isError } from "../../common/errors";

function valid(): LatencySamples {
  return {
    kind: "petra-latency-samples",
    version: 1,
    mode: "tor-onion",
    perHopDelayMs: 20,
    seed: 1,
    config: { scenario: "case-study-9" },
    measuredAt: "2026-11-25T10:00:00.000Z",
    rpcMs: [12.5, 11.2, 30],
    zmqRoundTripMs: [14, 15],
    bootstrapS: [16.6],
    clearingS: [2.1, 3.4],
  };
}

function rejects(value: unknown, field: string): void {
  try {
    parseLatencySamples(value, "x.json");
    expect.fail(`accepted a file with a bad ${field}`);
  } catch (e) {
    expect(isError(e, "INVALID_ARGUMENT")).to.equal(true, String(e));
    expect((e as Error).message.startsWith(`x.json: ${field}:`)).to.equal(true, (e as Error).message);
  }
}

describe("latency samples # readLatencySamples", () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "petra-latency-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("writes and reads back a file, named by mode and per-hop delay", () => {
    const file = writeLatencySamples(dir, valid());
    expect(path.basename(file)).to.equal("tor-onion-hop20ms.json");
    expect(readLatencySamples(file)).to.deep.equal(valid());
    expect(latencySamplesFileName("direct", 0)).to.equal("direct.json");
  });

  it("accepts a direct file without bootstrap samples and without ZeroMQ samples", () => {
    const { zmqRoundTripMs: _omit, ...rest } = valid();
    expect(parseLatencySamples({ ...rest, mode: "direct", bootstrapS: [] }).mode).to.equal("direct");
  });

  it("reads every file the bench wrote in bench/latency", () => {
    const benchDir = path.join(__dirname, "..", "..", "bench", "latency");
    const files = fs.existsSync(benchDir) ? fs.readdirSync(benchDir).filter((f) => f.endsWith(".json")) : [];
    for (const f of files) {
      const s = readLatencySamples(path.join(benchDir, f));
      expect(f).to.equal(latencySamplesFileName(s.mode, s.perHopDelayMs));
      expect(LATENCY_MODES).to.include(s.mode);
    }
  });

  it("names the field that is wrong", () => {
    rejects({ ...valid(), kind: "latency" }, "kind");
    rejects({ ...valid(), version: 2 }, "version");
    rejects({ ...valid(), mode: "tor" }, "mode");
    rejects({ ...valid(), perHopDelayMs: -1 }, "perHopDelayMs");
    rejects({ ...valid(), seed: 1.5 }, "seed");
    rejects({ ...valid(), measuredAt: "yesterday" }, "measuredAt");
    rejects({ ...valid(), rpcMs: [] }, "rpcMs");
    rejects({ ...valid(), rpcMs: [1, -2] }, "rpcMs.1");
    rejects({ ...valid(), rpcMs: [1, "2"] }, "rpcMs.1");
    rejects({ ...valid(), zmqRoundTripMs: [] }, "zmqRoundTripMs");
    rejects({ ...valid(), bootstrapS: [] }, "bootstrapS");
    rejects({ ...valid(), clearingS: [] }, "clearingS");
    rejects({ ...valid(), medianMs: 3 }, "(root)");
    const { clearingS: _missing, ...noClearing } = valid();
    rejects(noClearing, "clearingS");
  });

  it("says which file cannot be read", () => {
    const file = path.join(dir, "broken.json");
    fs.writeFileSync(file, "{not json");
    expect(() => readLatencySamples(file)).to.throw(/broken\.json: cannot read as JSON/);
    expect(() => readLatencySamples(path.join(dir, "missing.json"))).to.throw(/missing\.json/);
  });
});
