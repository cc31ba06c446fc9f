import { expect } from "chai";
import { getAddress, id, Wallet } from "ethers";
import { ZK } from "../../common/zk-params";
import { type Allowance, allowanceCommitment, freshSecret, splitAllowance } from "../../mixer/allowance";
import { MerkleTree } from "../../mixer/merkle-tree";
import { createNote, type MixerNote, noteCommitment } from "../../mixer/note";
import { buildPoseidon, type Poseidon } from "../../mixer/poseidon";
import { Prover } from "../../mixer/prover";
import { Relayer } from "../../mixer/relayer";
import { proveAllowanceWithdrawal, proveMixerWithdrawal, RelayerClient } from "../../mixer/relayer-client";
import type {
  AllowanceWithdrawalWire,
  MixerWithdrawalWire,
  RelayRequest,
  RelayResult,
} from "../../mixer/relayer-protocol";
import { hardhatPrivateKey } from "../fixtures/dso";
import { expectExactly } from "../fixtures/exactly";
import { counterBytes } from "../fixtures/zk";
import { deployZkMarketFixture, type ZkMarketFixture } from "../fixtures/zk-market";

const hre = require("hardhat");

const RELAYER_KEY_INDEX = 12;
const GAS_DROP_WEI = 10n ** 16n;

/** A fresh, never-funded address, as a new pseudonym would be. */
const fresh = (label: string) => new Wallet(id(`relayer-test/${label}`)).address;

describe("mixer/relayer", () => {
  const rnd = counterBytes(90);
  let f: ZkMarketFixture;
  let poseidon: Poseidon;
  let prover: Prover;
  let relayer: Relayer;
  let client: RelayerClient;
  let notes: MixerNote[];
  let allowance: Allowance;
  let mixerTree: MerkleTree;
  let allowanceTree: MerkleTree;
  let pool: string;
  let vault: string;

  const nonce = () => hre.ethers.provider.getTransactionCount(relayer.address);
  const prove = (note: MixerNote, recipient: string, fee: bigint, relayerAddress = relayer.address) =>
    proveMixerWithdrawal({ prover, poseidon, tree: mixerTree, note, pool, recipient, relayer: relayerAddress, fee });

  before(async () => {
    poseidon = await buildPoseidon();
    prover = new Prover();
    f = await deployZkMarketFixture();
    pool = await f.mixer.getAddress();
    vault = await f.vault.getAddress();
    notes = Array.from({ length: 4 }, () =>
      createNote({ chainId: 31337n, denomination: f.denomination, randomBytes: rnd }),
    );
    for (const n of notes) await (await f.mixer.connect(f.dso).deposit(noteCommitment(poseidon, n))).wait();
    mixerTree = await MerkleTree.create({ leaves: notes.map((n) => noteCommitment(poseidon, n)) });
    allowance = {
      capW: 3000n,
      windowStart: 96n,
      windowEnd: 191n,
      secret: freshSecret(rnd),
      nullifier: freshSecret(rnd),
    };
    await (await f.vault.connect(f.dso).issue(allowanceCommitment(poseidon, allowance))).wait();
    allowanceTree = await MerkleTree.create({ leaves: [allowanceCommitment(poseidon, allowance)] });
    relayer = new Relayer({
      provider: hre.ethers.provider,
      privateKey: hardhatPrivateKey(RELAYER_KEY_INDEX),
      pools: [pool],
      vaults: [vault],
      gasDropWei: GAS_DROP_WEI,
      prover,
    });
    client = new RelayerClient({ url: await relayer.start() });
  });

  after(async () => {
    await relayer?.stop();
    await prover?.close();
  });

  it("reports its address, pools, vaults and fees on /v1/status, bound to loopback", async () => {
    expect(new URL(client.url).hostname).to.equal("127.0.0.1");
    const s = await client.status();
    expect(s.relayer).to.equal(relayer.address);
    expectExactly(s.pools, [{ address: pool, denomination: f.denomination.toString() }]);
    expectExactly(s.vaults, [{ address: vault, direction: -1 }]);
    expect(s.fees).to.deep.equal({ mixer: "10", allowance: "10", gasDrop: "10" });
    expect(s.chainId).to.equal("31337");
  });

  it("relays a valid withdrawal: recipient gets the denomination minus the fee, the relayer the fee and the gas bill", async () => {
    const recipient = fresh("one");
    const ethBefore = await hre.ethers.provider.getBalance(relayer.address);
    const r = await client.relay({ mixer: await prove(notes[0] as MixerNote, recipient, 20n), gasDrop: true });
    expect(r.ok, JSON.stringify(r)).to.equal(true);
    const ok = r as RelayResult;
    expect(ok.transactions.map((t) => t.kind)).to.deep.equal(["mixer", "gas-drop"]);
    expect(await f.market.financialBalance(recipient)).to.equal(f.denomination - 20n);
    expect(await f.market.financialBalance(relayer.address)).to.equal(20n);
    // The recipient never paid for anything: its only ether is the relayer's drop.
    expect(await hre.ethers.provider.getBalance(recipient)).to.equal(GAS_DROP_WEI);
    const gasPaid = ok.transactions.reduce((s, t) => s + BigInt(t.gasUsed) * BigInt(t.effectiveGasPrice), 0n);
    expect(gasPaid > 0n).to.equal(true);
    expect(await hre.ethers.provider.getBalance(relayer.address)).to.equal(ethBefore - gasPaid - GAS_DROP_WEI);
    const withdrawTx = await hre.ethers.provider.getTransaction(ok.transactions[0]?.hash as string);
    expect(withdrawTx?.from).to.equal(relayer.address);
  });

  describe("refusals", () => {
    let paid: MixerWithdrawalWire;
    let spend: AllowanceWithdrawalWire;
    let recipient: string;

    before(async () => {
      recipient = fresh("two");
      paid = await prove(notes[1] as MixerNote, recipient, 20n);
      const request = { powerW: 1200n, start: 120n, end: 120n };
      spend = await proveAllowanceWithdrawal({
        prover,
        poseidon,
        tree: allowanceTree,
        allowance,
        parts: splitAllowance(allowance, request, rnd),
        vault,
        request,
        recipient,
      });
    });

    const tamperDecimal = (s: string) => (BigInt(s) + 1n).toString();
    const cases: [string, () => RelayRequest | string, number, string, string | undefined][] = [
      ["a body that is not JSON", () => "{not json", 400, "MALFORMED_JSON", undefined],
      [
        "a missing field",
        () => ({ mixer: { ...paid, fee: undefined } }) as unknown as RelayRequest,
        400,
        "INVALID_REQUEST",
        "mixer.fee",
      ],
      ["an unknown pool", () => ({ mixer: { ...paid, pool: fresh("pool") } }), 400, "UNKNOWN_POOL", "mixer.pool"],
      [
        "an unknown vault",
        () => ({ mixer: paid, allowance: { ...spend, vault: pool } }),
        400,
        "UNKNOWN_VAULT",
        "allowance.vault",
      ],
      [
        "another relayer",
        () => ({ mixer: { ...paid, relayer: fresh("other") } }),
        400,
        "WRONG_RELAYER",
        "mixer.relayer",
      ],
      // A valid proof whose fee covers the allowance, but not a gas drop on top.
      ["a fee too low", () => ({ mixer: paid, allowance: spend, gasDrop: true }), 402, "FEE_TOO_LOW", "mixer.fee"],
      ["a fee above the denomination", () => ({ mixer: { ...paid, fee: "1001" } }), 400, "FEE_TOO_HIGH", "mixer.fee"],
      [
        "an unknown root",
        () => ({ mixer: { ...paid, root: tamperDecimal(paid.root) } }),
        409,
        "UNKNOWN_ROOT",
        "mixer.root",
      ],
      [
        "a tampered proof",
        () => ({
          mixer: {
            ...paid,
            proof: { ...paid.proof, pi_a: [tamperDecimal(paid.proof.pi_a[0] as string), ...paid.proof.pi_a.slice(1)] },
          },
        }),
        400,
        "PROOF_INVALID",
        "mixer.proof",
      ],
      [
        "a redirected recipient",
        () => ({ mixer: { ...paid, recipient: fresh("thief") } }),
        400,
        "PROOF_INVALID",
        "mixer.proof",
      ],
      [
        "a tampered allowance power",
        () => ({ mixer: paid, allowance: { ...spend, powerW: "1300" } }),
        400,
        "PROOF_INVALID",
        "allowance.proof",
      ],
      [
        "a field element out of range",
        () => ({ mixer: { ...paid, nullifierHash: ZK.fieldModulus.toString() } }),
        400,
        "INVALID_REQUEST",
        "mixer.nullifierHash",
      ],
    ];

    it("answers each bad request with a 4xx naming what is wrong, sends nothing, and keeps serving", async () => {
      const before = await nonce();
      for (const [what, make, status, code, field] of cases) {
        const body = make();
        const answer = await client.request(
          "POST",
          "/v1/relay",
          typeof body === "string" ? body : JSON.stringify(body),
        );
        const error = (answer.body as { error: { code: string; field?: string; message: string } }).error;
        expect(answer.httpStatus, what).to.equal(status);
        expect(error.code, `${what}: ${error.message}`).to.equal(code);
        expect(error.field, what).to.equal(field);
        expect(error.message.length, what).to.be.greaterThan(0);
        expect((await client.status()).relayer, `still serving after ${what}`).to.equal(relayer.address);
      }
      expect((await client.request("GET", "/nowhere")).httpStatus).to.equal(404);
      expect((await client.request("GET", "/v1/relay")).httpStatus).to.equal(405);
      expect((await client.request("POST", "/v1/relay", "x".repeat(70_000))).httpStatus).to.equal(413);
      expect(await nonce(), "a refused request must not cost the relayer a transaction").to.equal(before);

      // Still serving: the same withdrawal, well formed, goes through, with the allowance it pays for.
      const r = await client.relay({ mixer: paid, allowance: spend });
      expect(r.ok, JSON.stringify(r)).to.equal(true);
      const ok = r as RelayResult;
      expect(ok.transactions.map((t) => t.kind)).to.deep.equal(["mixer", "allowance"]);
      const asset = await f.market.energyAsset(BigInt(ok.assetId as string));
      expect([asset.owner, asset.powerW, asset.start, asset.end]).to.deep.equal([
        getAddress(recipient),
        -1200n,
        120n,
        120n,
      ]);
      expect(await f.market.financialBalance(recipient)).to.equal(f.denomination - 20n);
    });

    it("refuses a double spend off chain, without sending a transaction", async () => {
      const before = await nonce();
      for (const body of [
        { mixer: paid },
        { mixer: await prove(notes[2] as MixerNote, recipient, 20n), allowance: spend },
      ]) {
        const r = await client.relay(body);
        expect(r.ok).to.equal(false);
        expect(r.ok === false && [r.httpStatus, r.code]).to.deep.equal([409, "NULLIFIER_SPENT"]);
        expect(r.ok === false && r.field).to.equal(body.allowance ? "allowance.nullifierHash" : "mixer.nullifierHash");
      }
      expect(await nonce()).to.equal(before);
    });

    it("relays one of two concurrent requests spending the same note", async () => {
      const body = { mixer: await prove(notes[3] as MixerNote, fresh("three"), 10n) };
      const answers = await Promise.all([client.relay(body), client.relay(body)]);
      expect(answers.filter((a) => a.ok)).to.have.length(1);
      const refused = answers.find((a) => !a.ok);
      expect(refused?.ok === false && refused.code).to.equal("NULLIFIER_SPENT");
      expect(await f.market.financialBalance(fresh("three"))).to.equal(f.denomination - 10n);
    });
  });
});
