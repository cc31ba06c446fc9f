import { expect } from "chai";
import { HouseholdRegistry } from "../../agents/household-registry";
import { isError } from "../../common/errors";
import { testGrid } from "../fixtures/dso";

function refusal(input: unknown): string {
  try {
    new HouseholdRegistry(input);
  } catch (e) {
    expect(isError(e, "INVALID_ARGUMENT")).to.equal(true);
    return (e as Error).message;
  }
  throw new Error("accepted");
}

describe("HouseholdRegistry", () => {
  it("finds households by id and by key, and a key only for its own household", () => {
    const { registry } = testGrid();
    const r = new HouseholdRegistry(registry);
    const h1 = registry.households[0] as { publicKeyHex: string };
    expect(r.household("h1")?.feederId).to.equal("f1");
    expect(r.householdByKey(h1.publicKeyHex)?.id).to.equal("h1");
    expect(r.keyFor("h1", h1.publicKeyHex)?.length).to.equal(32);
    expect(r.keyFor("h2", h1.publicKeyHex)).to.equal(undefined);
    expect(r.feeder("f2")?.ratingW).to.equal(50_000);
  });

  it("names the field of each invalid entry", () => {
    const { registry } = testGrid();
    const [a, b] = registry.households as unknown as [Record<string, unknown>, Record<string, unknown>];
    expect(refusal({ ...registry, households: [{ ...a, feederId: "nope" }] }))
      .to.contain("households.0.feederId")
      .and.contain("nope");
    expect(refusal({ ...registry, households: [a, { ...b, id: "h1" }] })).to.contain("households.1.id");
    expect(refusal({ ...registry, households: [a, { ...b, publicKeyHex: a.publicKeyHex }] })).to.contain(
      "households.1.publicKeyHex",
    );
    expect(refusal({ ...registry, households: [{ ...a, pvCapacityW: -1 }] })).to.contain("households.0.pvCapacityW");
    expect(
      refusal({ ...registry, feeders: [...(registry.feeders as unknown[]), { id: "f1", ratingW: 1 }] }),
    ).to.contain("feeders.2.id");
    expect(refusal({ ...registry, households: [{ ...a, publicKeyHex: "XYZ" }] })).to.contain(
      "households.0.publicKeyHex",
    );
  });
});
