import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { petra } from "../fixtures/petra-cli";

describe("cli # petra", function () {
  this.timeout(180_000);

  it("prints help for the program and for every command", async () => {
    const top = await petra("--help");
    expect(top.code).to.equal(0);
    const commands = [...top.stdout.matchAll(/^\s{2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]).filter((c) => c !== "help");
    expect(commands).to.include("demo");
    for (const c of commands) {
      const h = await petra(c as string, "--help");
      expect(h.code, `petra ${c} --help`).to.equal(0);
      expect(h.stdout).to.match(/Usage: petra/);
    }
  });

  it("runs the demo end to end from any directory and writes demo.json", async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "petra-demo-"));
    const r = await petra("demo", "--out", out);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/consumer accepts offer 0 with asset 1/);
    expect(r.stdout).to.match(/balances after deposits: producer 0, consumer 0/);
    const demo = JSON.parse(fs.readFileSync(path.join(out, "demo.json"), "utf8"));
    expect(demo.steps.map((s: { step: string }) => s.step)).to.have.length.greaterThan(8);
    fs.rmSync(out, { recursive: true, force: true });
  });

  it("names an unknown command", async () => {
    const r = await petra("no-such-command");
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.match(/unknown command 'no-such-command'/);
  });
});
