import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { freePorts } from "../../../agents/free-ports";
import { TorControl } from "../../../agents/tor/tor-control";
import { torAvailable } from "../../../agents/tor/tor-network";
import { isError } from "../../../common/errors";

// One tor with DisableNetwork 1: a real control port in under a second, no network needed.
describe("TorControl", () => {
  let dir: string;
  let tor: ChildProcess | undefined;
  let controlPort: number;
  const password = "petra-test-password";

  before(async function () {
    if (!torAvailable()) this.skip();
    dir = mkdtempSync(join(tmpdir(), "petra-torctl-"));
    [controlPort] = await freePorts(1);
    const hashed = spawnSync("tor", ["--quiet", "--hash-password", password], { encoding: "utf8" })
      .stdout.trim()
      .split("\n")
      .pop();
    writeFileSync(
      join(dir, "torrc"),
      [
        `DataDirectory ${dir}`,
        "DisableNetwork 1",
        "SocksPort 0",
        `ControlPort 127.0.0.1:${controlPort}`,
        "CookieAuthentication 1",
        `HashedControlPassword ${hashed}`,
        `__OwningControllerProcess ${process.pid}`,
        `Log notice file ${join(dir, "notice.log")}`,
      ].join("\n"),
    );
    tor = spawn("tor", ["-f", join(dir, "torrc"), "--quiet"], { detached: true, stdio: "ignore" });
    for (let i = 0; i < 100 && !existsSync(join(dir, "control_auth_cookie")); i++)
      await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 200));
  });

  after(async () => {
    if (tor?.pid !== undefined && tor.exitCode === null) {
      const exited = new Promise((r) => tor!.once("exit", r));
      process.kill(-tor.pid, "SIGTERM");
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("authenticates with the cookie (SAFECOOKIE) and answers GETINFO", async () => {
    const c = await TorControl.connect({ port: controlPort });
    try {
      expect(await c.getInfo("version")).to.match(/^0\.4\./);
      const phase = await c.bootstrapPhase();
      // DisableNetwork: tor cannot get past the start, which the parser must report as such.
      expect(phase.progress).to.be.lessThan(100);
      expect(phase.tag).to.not.equal("");
    } finally {
      c.close();
    }
  });

  it("authenticates with a password and rejects a wrong one with TOR_CONTROL_FAILED", async () => {
    const c = await TorControl.connect({ port: controlPort, password });
    c.close();
    try {
      await TorControl.connect({ port: controlPort, password: "wrong" });
      expect.fail("wrong password accepted");
    } catch (e) {
      expect(isError(e, "TOR_CONTROL_FAILED")).to.equal(true, String(e));
    }
  });

  it("reads multi-line data replies, sends NEWNYM, and survives a refused command", async () => {
    const c = await TorControl.connect({ port: controlPort });
    try {
      const config = await c.getInfo("config-text");
      expect(config.split("\n")).to.include(`ControlPort 127.0.0.1:${controlPort}`);
      expect(config.split("\n")).to.include("DisableNetwork 1");
      await c.newnym();
      expect(await c.circuitStatus()).to.deep.equal([]);
      expect(await c.streamStatus()).to.deep.equal([]);
      let refused: unknown;
      await c.command("GETINFO no-such-key").catch((e) => {
        refused = e;
      });
      expect(isError(refused, "TOR_CONTROL_FAILED")).to.equal(true);
      expect((refused as Error).message).to.match(/552/);
      expect(await c.getInfo("version")).to.match(/^0\.4\./);
    } finally {
      c.close();
    }
  });

  it("fails with TOR_CONTROL_FAILED when nothing listens", async () => {
    const [port] = await freePorts(1);
    try {
      await TorControl.connect({ port, timeoutMs: 1000 });
      expect.fail("connected to a closed port");
    } catch (e) {
      expect(isError(e, "TOR_CONTROL_FAILED")).to.equal(true);
    }
  });
});
