import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "chai";
import { ARTIFACTS_DIR, artifactPaths, CIRCUITS } from "../../circuits/instances";
import zkJson from "../../common/zk-constants.json";
import { ZK } from "../../common/zk-params";

// The committed artifacts are only trustworthy if they were built from the committed sources and
// constants: these checks fail when someone edits zk-constants.json or a circuit table entry and
// forgets `npm run build:circuits`.
describe("circuits # one source of constants", () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(ARTIFACTS_DIR, "manifest.json"), "utf8"));
  const sol = fs.readFileSync(path.join(__dirname, "..", "..", "contracts", "verifiers", "ZkConstants.sol"), "utf8");

  it("built the artifacts from the current zk-constants.json", () => {
    expect(manifest.constants).to.deep.equal(zkJson);
  });

  it("generated ZkConstants.sol from the same values", () => {
    expect(sol).to.contain(`ZK_TREE_DEPTH = ${ZK.treeDepth};`);
    expect(sol).to.contain(`ZK_ROOT_HISTORY_SIZE = ${ZK.rootHistorySize};`);
    expect(sol).to.contain(`ZK_FIELD_MODULUS = ${ZK.fieldModulus};`);
    expect(sol).to.contain(`ZK_MIXER_COMMITMENT_DOMAIN = ${ZK.mixer.commitmentDomain};`);
    for (const d of ZK.mixer.denominations) expect(sol).to.contain(`amount == ${d}`);
  });

  for (const c of Object.values(CIRCUITS)) {
    it(`${c.name}: artifacts match the manifest and the instance table`, () => {
      const m = manifest.circuits[c.name];
      expect(m.params).to.deep.equal(c.params.map(String));
      expect(m.publicSignals).to.deep.equal([...c.publicOutputs, ...c.publicInputs]);
      const p = artifactPaths(c.name);
      const sha = (f: string) => createHash("sha256").update(fs.readFileSync(f)).digest("hex");
      expect({ wasm: sha(p.wasm), zkey: sha(p.zkey), vkey: sha(p.vkey) }).to.deep.equal(m.sha256);
      const vkey = JSON.parse(fs.readFileSync(p.vkey, "utf8"));
      expect(vkey.nPublic).to.equal(c.publicOutputs.length + c.publicInputs.length);
      // Within a 2^13 domain, as TOOLCHAIN.md budgets (2^14 is the hard limit).
      expect(m.constraints + vkey.nPublic + 1).to.be.at.most(2 ** 13);
      // Committed files stay under the repository's 5 MB limit.
      for (const f of [p.wasm, p.zkey, p.vkey]) expect(fs.statSync(f).size, f).to.be.below(5_000_000);
    });
  }
});
