import { expect } from "chai";
import { LiveClock } from "../../agents/clock-live";

describe("LiveClock", () => {
  const clock = new LiveClock();

  it("runs a scheduled task at its time, not before", async () => {
    const start = clock.now();
    const ranAt = await new Promise<number>((resolve) => clock.schedule(start + 60, () => resolve(clock.now())));
    expect(ranAt - start).to.be.at.least(59);
  });

  it("runs an overdue task asynchronously, and a cancelled one never", async () => {
    const order: string[] = [];
    clock.schedule(clock.now() - 1000, () => order.push("overdue"));
    const c = clock.schedule(clock.now() + 20, () => order.push("cancelled"));
    order.push("sync");
    c.cancel();
    await clock.sleep(60);
    expect(order).to.deep.equal(["sync", "overdue"]);
  });
});
