import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { expect } from "chai";
import { getAddress } from "ethers";
import { TASK_NODE_CREATE_SERVER } from "hardhat/builtin-tasks/task-names";
import { LiveClock } from "../../agents/clock-live";
import { deployEnergyMarket } from "../../agents/deploy-market";
import { DsoClient, type WithdrawRequest, type WithdrawResult } from "../../agents/dso-client";
import { loadDsoProcessConfig } from "../../agents/dso-process";
import { publicKeyHex } from "../../agents/envelope";
import { freePorts } from "../../agents/free-ports";
import type { EnergyMarket } from "../../typechain-types";
import { hardhatPrivateKey, testGrid, testKey } from "../fixtures/dso";

const hre = require("hardhat");
const ROOT = resolve(__dirname, "../..");

/**
 * The DSO as a real child process against a JSON-RPC chain (the in-process Hardhat chain served
 * over HTTP on 127.0.0.1, with interval mining so that mint transactions sit in the mempool for
 * a while): killed with SIGKILL by its PID while a mint batch is in flight, then restarted on the
 * same SQLite file.
 */

interface DsoChild {
  child: ChildProcess;
  stderr: string[];
  exited: Promise<number | null>;
}

function spawnDso(configPath: string): DsoChild {
  const child = spawn(process.execPath, ["-r", "ts-node/register", "agents/dso-process.ts", "--config", configPath], {
    cwd: ROOT,
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "true" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stderr: string[] = [];
  child.stderr?.on("data", (d) => stderr.push(String(d)));
  const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
  return { child, stderr, exited };
}

function waitForLine(c: DsoChild, event: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
  return new Promise((res, rej) => {
    let buffer = "";
    const timer = setTimeout(
      () => rej(new Error(`no "${event}" line from the DSO in ${timeoutMs} ms; stderr: ${c.stderr.join("")}`)),
      timeoutMs,
    );
    const onData = (d: Buffer) => {
      buffer += String(d);
      for (const l of buffer.split("\n").slice(0, -1)) {
        try {
          const parsed = JSON.parse(l) as Record<string, unknown>;
          if (parsed.event === event) {
            clearTimeout(timer);
            c.child.stdout?.off("data", onData);
            res(parsed);
          }
        } catch {
          // not a lifecycle line
        }
      }
      buffer = buffer.slice(buffer.lastIndexOf("\n") + 1);
    };
    c.child.stdout?.on("data", onData);
    c.exited.then((code) => rej(new Error(`DSO exited (${code}) before "${event}"; stderr: ${c.stderr.join("")}`)));
  });
}

async function eventually(what: string, ok: () => boolean, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const anon = (i: number) => getAddress(`0x${(0xb0000 + i).toString(16).padStart(40, "0")}`);

describe("dso-process # crash and restart", function () {
  this.timeout(180_000);
  let server: { listen(): Promise<{ port: number }>; close(): Promise<void> };
  let rpcUrl: string;
  let dir: string;
  let market: EnergyMarket;
  const children: DsoChild[] = [];

  before(async () => {
    server = await hre.run(TASK_NODE_CREATE_SERVER, { hostname: "127.0.0.1", port: 0, provider: hre.network.provider });
    const { port } = await server.listen();
    rpcUrl = `http://127.0.0.1:${port}`;
    const [dsoSigner] = await hre.ethers.getSigners();
    market = await deployEnergyMarket(dsoSigner);
    dir = mkdtempSync(join(tmpdir(), "petra-dso-process-"));
  });

  after(async () => {
    for (const c of children) {
      if (c.child.exitCode === null && c.child.signalCode === null && c.child.pid) process.kill(c.child.pid, "SIGKILL");
    }
    await hre.network.provider.send("evm_setIntervalMining", [0]);
    await hre.network.provider.send("evm_setAutomine", [true]);
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("loads a config whose registry is a file next to it, and resolves paths against the config", () => {
    const sub = join(dir, "cfg");
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, "registry.json"), JSON.stringify(testGrid().registry));
    const path = join(sub, "dso.json");
    writeFileSync(
      path,
      JSON.stringify({
        rpcUrl,
        marketAddress: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        dsoPrivateKey: hardhatPrivateKey(0),
        signingKeyHex: "11".repeat(32),
        endpoint: "tcp://127.0.0.1:5555",
        dbPath: "book.sqlite",
        registry: "registry.json",
      }),
    );
    const { config, registry } = loadDsoProcessConfig(path);
    expect(config.dbPath).to.equal(join(sub, "book.sqlite"));
    expect(registry.allHouseholds().map((h) => h.id)).to.deep.equal(["h1", "h2", "h3"]);
  });

  it("exits 2 naming the field when the config is invalid", async () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ rpcUrl, endpoint: "tcp://127.0.0.1:1" }));
    const c = spawnDso(bad);
    children.push(c);
    expect(await c.exited).to.equal(2);
    expect(c.stderr.join("")).to.contain("marketAddress");
  });

  it("loses no balance and mints no request twice when killed mid-batch (three times) and restarted", async () => {
    const grid = testGrid();
    const dsoKey = testKey("dso");
    const configPath = join(dir, "dso.json");
    const dbPath = join(dir, "dso.sqlite");
    const endpoint = `tcp://127.0.0.1:${(await freePorts(1))[0]}`;
    writeFileSync(
      configPath,
      JSON.stringify({
        rpcUrl,
        marketAddress: await market.getAddress(),
        dsoPrivateKey: hardhatPrivateKey(0),
        signingKeyHex: Buffer.from(dsoKey.secretKey).toString("hex"),
        endpoint,
        dbPath: "dso.sqlite",
        registry: grid.registry,
        fromBlock: await hre.ethers.provider.getBlockNumber(),
        logPollIntervalMs: 100,
        receiptPollIntervalMs: 20,
        maxBatchRequests: 8,
      }),
    );
    // Blocks every 400 ms: a signed batch waits in the mempool long enough to be killed under.
    await hre.network.provider.send("evm_setAutomine", [false]);
    await hre.network.provider.send("evm_setIntervalMining", [400]);

    const first = spawnDso(configPath);
    children.push(first);
    const ready = await waitForLine(first, "ready");
    expect(ready.endpoint).to.equal(endpoint);

    const clock = new LiveClock();
    const households = ["h1", "h2", "h3"];
    const clients = households.map(
      (h) =>
        new DsoClient({
          endpoint,
          householdId: h,
          key: grid.keys[h] as never,
          clock,
          dsoPublicKeyHex: publicKeyHex(dsoKey),
          timeoutMs: 1_500,
          attempts: 40,
        }),
    );
    const request = (i: number): WithdrawRequest => ({
      requestId: `req-${i}`,
      anonAddress: anon(i),
      assets: [{ powerW: 100 + i, start: i, end: i }],
      financial: 10 + i,
    });
    const send = (i: number) => (clients[i % 3] as DsoClient).withdraw(request(i));
    const TOTAL = 54;
    const KILLS = 3;
    try {
      // Phase 1: some requests minted before any crash.
      const early = await Promise.all([0, 1, 2, 3, 4, 5].map(send));
      for (const r of early) expect(r.status).to.equal("accepted");

      // Phase 2: the rest in flight; kill the DSO whenever a new batch is signed but not settled, KILLS times.
      const book = new Database(dbPath, { readonly: true, fileMustExist: true });
      const count = (sql: string, ...args: unknown[]) => (book.prepare(sql).get(...args) as { n: number }).n;
      const late = Array.from({ length: TOTAL - 6 }, (_, k) => send(6 + k));
      let current = first;
      let lastBatch = 0;
      let sawUnbatched = false;
      for (let kill = 0; kill < KILLS; kill++) {
        await eventually(
          "a new signed, unsettled batch",
          () => count("SELECT count(*) AS n FROM batches WHERE status = 'signed' AND id > ?", lastBatch) > 0,
        );
        lastBatch = count("SELECT max(id) AS n FROM batches");
        // Both crash windows at once: a batch signed but not settled, and requests reserved but not yet signed.
        sawUnbatched ||= count("SELECT count(*) AS n FROM requests WHERE status = 'pending' AND batch_id IS NULL") > 0;
        process.kill(current.child.pid as number, "SIGKILL");
        expect(await current.exited).to.equal(null);
        // Alternate: let the orphaned batch be mined while no DSO runs, or restart while it is still in the mempool.
        if (kill % 2 === 0) await new Promise((r) => setTimeout(r, 900));
        current = spawnDso(configPath);
        children.push(current);
        await waitForLine(current, "ready");
      }
      book.close();
      expect(sawUnbatched).to.equal(true);
      const last = current;

      // Clients retry with the same requestIds; every request ends accepted.
      const results: WithdrawResult[] = [...early, ...(await Promise.all(late))];
      // Re-send everything once more after the restart: the same answers, nothing new on chain.
      const again = await Promise.all(Array.from({ length: TOTAL }, (_, i) => send(i)));

      const ids = results.map((r) => {
        if (r.status !== "accepted") throw new Error(`${r.requestId}: ${r.reason} ${r.message}`);
        return r.assetIds[0] as bigint;
      });
      expect(new Set(ids).size).to.equal(TOTAL);
      expect(again.map((r) => (r.status === "accepted" ? r.assetIds[0] : r.reason))).to.deep.equal(ids);
      expect(await market.assetCount()).to.equal(BigInt(TOTAL));
      for (let i = 0; i < TOTAL; i++) {
        expect(await market.financialBalance(anon(i))).to.equal(BigInt(10 + i));
        const [owner, powerW] = await market.energyAsset(ids[i] as bigint);
        expect([owner, powerW]).to.deep.equal([anon(i), BigInt(100 + i)]);
      }
      const added = await market.queryFilter(market.filters.FinancialAdded());
      expect(added.length).to.equal(TOTAL);

      // A clean stop, then the book: every balance is exactly initial minus what was withdrawn.
      process.kill(last.child.pid as number, "SIGTERM");
      await waitForLine(last, "stopped");
      expect(await last.exited).to.equal(0);
      const db = new Database(dbPath, { readonly: true });
      for (const [k, h] of households.entries()) {
        let spent = 0;
        for (let i = k; i < TOTAL; i += 3) spent += 10 + i;
        const row = db.prepare("SELECT balance FROM households WHERE id = ?").get(h) as { balance: number };
        expect(row.balance, h).to.equal(1_000_000 - spent);
      }
      expect(
        (db.prepare("SELECT count(*) AS n FROM requests WHERE status = 'minted'").get() as { n: number }).n,
      ).to.equal(TOTAL);
      db.close();
    } finally {
      for (const c of clients) c.close();
    }
  });
});
