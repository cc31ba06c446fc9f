import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "chai";
import { BDEW_INTERVALS, type BdewDayType, parseBdewCsv, profile } from "../../analysis/bdew";
import { isError } from "../../common/errors";

const H25 = path.join(__dirname, "../../data/bdew/h25.csv");

/** The day type of a date of 2025: Sundays and national holidays FT, Saturdays and 24/31 December SA. */
function dayType2025(d: Date): BdewDayType {
  const md = d.toISOString().slice(5, 10);
  const holidays = ["01-01", "04-18", "04-21", "05-01", "05-29", "06-09", "10-03", "12-25", "12-26"];
  if (d.getUTCDay() === 0 || holidays.includes(md)) return "FT";
  if (d.getUTCDay() === 6 || md === "12-24" || md === "12-31") return "SA";
  return "WT";
}

function expectMalformed(text: string, row: number, column: number, what: RegExp) {
  try {
    parseBdewCsv(text, "bad.csv");
    expect.fail("accepted a malformed file");
  } catch (e) {
    expect(isError(e, "INVALID_ARGUMENT"), String(e)).to.equal(true);
    expect((e as Error).message).to.contain(`bad.csv row ${row} column ${column}:`);
    expect((e as Error).message).to.match(what);
    expect((e as { info: Record<string, unknown> }).info).to.include({ file: "bad.csv", row, column });
  }
}

describe("bdew # profile", () => {
  it("reads 96 quarter hours of a month and day type", () => {
    const june = profile("h25", 6, "WT");
    expect(june).to.have.length(BDEW_INTERVALS);
    expect(june[0]).to.equal(24.566); // 00:00-00:15, Juni WT
    expect(june[95]).to.equal(26.662); // 23:45-00:00
    expect(profile("h25", 1, "SA")[0]).to.equal(22.152);
    expect(profile("p25", 1, "SA")[0]).to.equal(36.049);
  });

  it("sums to 1,000,000 kWh over the days of 2025", () => {
    let totalKWh = 0;
    for (let t = Date.UTC(2025, 0, 1); t < Date.UTC(2026, 0, 1); t += 86_400_000) {
      const d = new Date(t);
      totalKWh += profile("h25", d.getUTCMonth() + 1, dayType2025(d)).reduce((s, v) => s + v, 0);
    }
    expect(totalKWh).to.be.within(990_000, 1_010_000);
  });

  it("names the argument it rejects", () => {
    expect(() => profile("h25", 13, "WT")).to.throw(/month: must be 1 to 12, got 13/);
    expect(() => profile("h25", 1, "MO" as BdewDayType)).to.throw(/dayType: must be WT, SA or FT/);
    expect(() => profile("x25" as "h25", 1, "WT")).to.throw(/kind: must be one of h25, p25, s25/);
    expect(() => profile("h25", 1, "WT", "/nonexistent")).to.throw(/file: no BDEW profile at \/nonexistent\/h25.csv/);
  });
});

describe("bdew # parseBdewCsv", () => {
  const good = fs.readFileSync(H25, "utf8");
  const lines = good.split("\n");
  const withLine = (i: number, f: (line: string) => string) => lines.map((l, j) => (j === i ? f(l) : l)).join("\n");

  it("parses the shipped file and a CRLF copy alike", () => {
    expect(parseBdewCsv(good.replace(/\n/g, "\r\n"), "crlf.csv").profile(6, "WT")).to.deep.equal(
      profile("h25", 6, "WT"),
    );
  });

  it("names row and column of a value that is not a number", () => {
    // Row 3 is 00:00-00:15; column 4 is Januar WT.
    expectMalformed(
      withLine(2, (l) => l.replace("20.126", "2O.126")),
      3,
      4,
      /"2O.126" is not a non-negative number \(Januar WT\)/,
    );
    expectMalformed(
      withLine(50, (l) => l.replace(/,[^,]*$/, ",")),
      51,
      37,
      /"" is not a non-negative number \(Dezember WT\)/,
    );
    expectMalformed(
      withLine(10, (l) => l.replace(/,([^,]*)$/, ",-$1")),
      11,
      37,
      /is not a non-negative number/,
    );
  });

  it("names a time label out of order, a missing cell and a missing row", () => {
    expectMalformed(
      withLine(4, (l) => l.replace("00:30-00:45", "00:45-01:00")),
      5,
      1,
      /"00:45-01:00" is not the quarter hour 00:30-00:45/,
    );
    expectMalformed(
      withLine(7, (l) => l.replace(/,[^,]*$/, "")),
      8,
      36,
      /has 36 cells, the header 37/,
    );
    expectMalformed(lines.filter((_, j) => j !== 40).join("\n"), 97, 1, /has 95 quarter-hour rows, expected 96/);
  });

  it("names a header cell that is not a month or day type", () => {
    expectMalformed(
      withLine(0, (l) => l.replace("Mai,Mai", "May,Mai")),
      1,
      14,
      /"May" is not a German month name/,
    );
    expectMalformed(
      withLine(1, (l) => l.replace("[kWh],SA", "[kWh],SO")),
      2,
      2,
      /"SO" is not WT, SA or FT/,
    );
    expectMalformed(
      withLine(1, (l) => l.replace("[kWh],SA,FT", "[kWh],SA,SA")),
      2,
      3,
      /Januar SA appears twice/,
    );
  });
});
