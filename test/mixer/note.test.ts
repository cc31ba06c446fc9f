import { expect } from "chai";
import { isError } from "../../common/errors";
import { ZK } from "../../common/zk-params";
import { createNote, noteCommitment, noteNullifierHash, parseNote, serializeNote } from "../../mixer/note";
import { buildPoseidon } from "../../mixer/poseidon";

// Deterministic key material so a failing case reproduces; production uses the OS CSPRNG.
function counterBytes(start: number): (n: number) => Uint8Array {
  let c = start;
  return (n) => Uint8Array.from({ length: n }, () => c++ & 0xff);
}

function expectNoteInvalid(text: string, reason: string): void {
  try {
    parseNote(text);
  } catch (e) {
    expect(isError(e, "NOTE_INVALID"), String(e)).to.equal(true);
    expect((e as { info: { reason: string } }).info.reason).to.equal(reason);
    expect((e as Error).message).to.match(/^note: /);
    return;
  }
  expect.fail(`parseNote accepted a bad note (${reason})`);
}

describe("mixer/note", () => {
  const denomination = ZK.mixer.denominations[1] as bigint;
  const note = createNote({ chainId: 31337n, denomination, randomBytes: counterBytes(7) });
  const text = serializeNote(note);

  it("round-trips through its text form", () => {
    expect(text).to.match(/^petra-mixer-v1-31337-10000-[0-9a-f]{124}-[0-9a-f]{8}$/);
    expect(parseNote(text)).to.deep.equal(note);
    expect(parseNote(`  ${text}\n`)).to.deep.equal(note);
  });

  it("draws distinct 31-byte nullifier and secret", () => {
    expect(note.nullifier).to.not.equal(note.secret);
    expect(note.nullifier < 1n << 248n && note.secret < 1n << 248n).to.equal(true);
    const fresh = createNote({ chainId: 1n, denomination });
    expect(fresh.nullifier).to.not.equal(note.nullifier);
  });

  it("names what is wrong with a bad note, never echoing it", () => {
    const flipped = text.replace(
      /-([0-9a-f])([0-9a-f]{123})-/,
      (_m, c: string, rest: string) => `-${c === "0" ? "1" : "0"}${rest}-`,
    );
    expectNoteInvalid(flipped, "checksum");
    expectNoteInvalid(`${text.slice(0, -1)}${text.endsWith("0") ? "1" : "0"}`, "checksum");
    expectNoteInvalid(text.replace("-v1-", "-v2-"), "version");
    expectNoteInvalid(text.replace("petra-mixer", "tornado-eth"), "format");
    expectNoteInvalid(text.replace("-31337-", "-0x7a69-"), "chainId");
    expectNoteInvalid(
      text.replace(/-[0-9a-f]{124}-/, (m) => `${m.slice(0, -3)}-`),
      "payload",
    );
    expectNoteInvalid(text.slice(0, -2), "checksum");
    expectNoteInvalid("", "format");
    try {
      parseNote(flipped);
    } catch (e) {
      const payload = text.split("-")[5] as string;
      expect(JSON.stringify((e as { info: unknown }).info)).to.not.contain(payload.slice(0, 20));
      expect((e as Error).message).to.not.contain(payload.slice(0, 20));
    }
  });

  it("refuses a denomination the mixer does not offer, with a valid checksum", () => {
    const body = text.split("-").slice(0, 6);
    body[4] = "12345";
    const { createHash } = require("node:crypto") as typeof import("node:crypto");
    const joined = body.join("-");
    expectNoteInvalid(`${joined}-${createHash("sha256").update(joined).digest("hex").slice(0, 8)}`, "denomination");
    expect(() => createNote({ chainId: 1n, denomination: 12345n })).to.throw(/denomination/);
  });

  it("commits with the domain-separated Poseidon(3) and hashes the nullifier alone", async () => {
    const poseidon = await buildPoseidon();
    expect(noteCommitment(poseidon, note)).to.equal(poseidon([ZK.mixer.commitmentDomain, note.nullifier, note.secret]));
    expect(noteCommitment(poseidon, note)).to.not.equal(poseidon([note.nullifier, note.secret]));
    expect(noteNullifierHash(poseidon, note)).to.equal(poseidon([note.nullifier]));
  });
});
