import { expect } from "chai";
import { measureGasSnapshot, readCommittedSnapshot } from "../../analysis/gas-snapshot";

describe("EnergyMarket # gas snapshot", () => {
  it("matches the committed gas-snapshot.json (run `npm run bench` after a contract change)", async () => {
    const measured = await measureGasSnapshot();
    const committed = readCommittedSnapshot();
    const changed = Object.keys({ ...measured, ...committed }).filter((k) => measured[k] !== committed[k]);
    expect(
      changed.map((k) => `${k}: committed ${committed[k]}, measured ${measured[k]}`),
      "gas changed; regenerate the snapshot with `npm run bench` and review the diff",
    ).to.deep.equal([]);
  });
});
