import { expect } from "chai";
import { formatBlockSetting, parseBlockSetting } from "../../analysis/live-blocks";

describe("live blocks # --blocks", () => {
  it("parses automine, fixed and exponential block times and prints them back", () => {
    for (const text of ["automine", "fixed:5000", "exp:13000"])
      expect(formatBlockSetting(parseBlockSetting(text))).to.equal(text);
    expect(parseBlockSetting("exp:250")).to.deep.equal({ kind: "exp", meanMs: 250 });
  });

  it("names the option when the text is wrong", () => {
    for (const bad of ["", "auto", "fixed", "fixed:", "exp:-1", "exp:1.5", "fixed:5"]) {
      expect(() => parseBlockSetting(bad, "--blocks"), bad).to.throw(/^--blocks: /);
    }
  });
});
