import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { PAPER_CLEARING_S } from "../../analysis/clearing-times";
import {
  figure3FromScenario,
  figure3Svg,
  figure4Svg,
  histogram,
  niceTicks,
  rasterize,
  writeFigure,
} from "../../analysis/figures";
import { loadScenario } from "../../analysis/scenario";
import { isError } from "../../common/errors";

/**
 * Checks that `svg` is well-formed XML of the subset the figures write (elements with double-quoted
 * attributes, escaped text, no comments) with an <svg> root; returns the element names in order.
 */
function parseSvg(svg: string): { elements: string[]; texts: string[] } {
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<>]*")*)\s*(\/?)>/g;
  const stack: string[] = [];
  const elements: string[] = [];
  const texts: string[] = [];
  let last = 0;
  for (let m = tag.exec(svg); m !== null; m = tag.exec(svg)) {
    const between = svg.slice(last, m.index);
    expect(between, `stray markup before offset ${m.index}`).to.not.match(/[<>]/);
    expect(between.replace(/&(amp|lt|gt|quot|apos|#\d+);/g, ""), "an unescaped &").to.not.contain("&");
    if (stack[stack.length - 1] === "text") texts.push(between);
    const [, closing, name, attrText, selfClosing] = m as unknown as [string, string, string, string, string];
    expect(attrText.replace(/&(amp|lt|gt|quot|apos|#\d+);/g, ""), "an unescaped & in an attribute").to.not.contain("&");
    if (closing) expect(stack.pop(), `</${name}> closes the wrong element`).to.equal(name);
    else {
      if (stack.length === 0) expect(elements, "a second root element").to.have.length(0);
      elements.push(name);
      if (!selfClosing) stack.push(name);
    }
    last = tag.lastIndex;
  }
  expect(svg.slice(last).trim(), "text after the root").to.equal("");
  expect(stack, "unclosed elements").to.deep.equal([]);
  expect(elements[0]).to.equal("svg");
  return { elements, texts: texts.map((t) => t.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&")) };
}

function pngSize(png: Buffer): { width: number; height: number } {
  expect([...png.subarray(0, 8)]).to.deep.equal([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  expect(png.subarray(12, 16).toString("latin1")).to.equal("IHDR");
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

describe("figures # histogram", () => {
  it("counts values into equal bins, the largest value into the last bin", () => {
    expect(histogram([0, 0.5, 1.9, 2, 3.99, 4, 10], 2)).to.deep.equal({
      edges: [0, 2, 4, 6, 8, 10],
      counts: [3, 2, 1, 0, 1],
    });
    expect(histogram([7], 5)).to.deep.equal({ edges: [0, 5, 10], counts: [0, 1] });
    expect(histogram([], 2)).to.deep.equal({ edges: [0, 2], counts: [0] });
  });

  it("names what it rejects", () => {
    expect(() => histogram([1, -0.5], 2)).to.throw(/values: must be finite numbers >= 0, got -0.5/);
    expect(() => histogram([1, Number.NaN], 2)).to.throw(/values: /);
    expect(() => histogram([1], 0)).to.throw(/binWidth: /);
  });

  it("chooses round axis ticks that cover the range", () => {
    expect(niceTicks(0, 38, 8)).to.deep.equal([0, 5, 10, 15, 20, 25, 30, 35, 40]);
    expect(niceTicks(-17, 28)).to.deep.equal([-20, -10, 0, 10, 20, 30]);
    expect(niceTicks(0, 0)).to.deep.equal([-1, 0, 1]);
  });
});

describe("figures # figure 3", () => {
  const input = {
    intervalMinutes: 15,
    firstInterval: 0,
    households: [
      { label: "producer <A&B>", netW: [0, 4000, 4000, 0] },
      { label: "consumer", netW: [-2000, -2000, -1000, -2000] },
    ],
    window: { firstInterval: 1, intervalCount: 2 },
  };

  it("draws one bar per household and interval with a value, in kWh per interval, and escapes labels", () => {
    const svg = figure3Svg(input);
    const { elements, texts } = parseSvg(svg);
    // background, trading window, 6 bars, frame, 2 legend boxes
    expect(elements.filter((e) => e === "rect")).to.have.length(11);
    expect(texts).to.include.members(["producer <A&B>", "consumer", "trading window", "kWh per 15-min interval"]);
    // 4000 W for 15 minutes is 1 kWh: the axis reaches 1, and -0.5 kWh below.
    expect(texts).to.include.members(["1", "-0.5", "00:00"]);
    expect(figure3Svg({ ...input, unit: "kW" })).to.contain("kW (mean over the interval)");
  });

  it("draws the case study over the whole day, its trading window shaded, every household named once", () => {
    const f = figure3FromScenario(loadScenario("case-study-9"));
    expect(f.households).to.have.length(9);
    expect(f.households.every((h) => h.netW.length === 96)).to.equal(true);
    expect(f.window).to.deep.equal({ firstInterval: 57, intervalCount: 14 });
    expect(new Set(f.households.map((h) => h.label)).size).to.equal(9);
    // The big producer makes 79.5 kW at 2:15 pm (drawn as 19.875 kWh in that quarter hour).
    expect(f.households.find((h) => h.label === "1/2")?.netW[57]).to.equal(79_500);
    const { texts } = parseSvg(figure3Svg(f));
    expect(texts).to.include.members(["trading window", "14:00", "1/2"]);
  });

  it("draws totals when there are too many households to tell apart", () => {
    const many = {
      ...input,
      households: Array.from({ length: 11 }, (_, i) => ({ label: `h${i}`, netW: [100 * i - 500, -200] })),
    };
    const { texts } = parseSvg(figure3Svg(many));
    expect(texts).to.include.members(["generation (11 households)", "load (11 households)"]);
    expect(texts).to.not.include("h3");
  });

  it("names what it rejects", () => {
    expect(() => figure3Svg({ ...input, households: [] })).to.throw(/households: must not be empty/);
    expect(() => figure3Svg({ ...input, intervalMinutes: 7 })).to.throw(/intervalMinutes: /);
    try {
      figure3Svg({ ...input, households: [{ label: "x", netW: [1, Number.NaN] }] });
      expect.fail("accepted NaN");
    } catch (e) {
      expect(isError(e, "INVALID_ARGUMENT")).to.equal(true);
    }
  });
});

describe("figures # figure 4", () => {
  const clearingS = [2.5, 4.1, 7.25, 9, 9.5, 11, 12.75, 14, 18.5, 30.3];

  it("prints our statistics beside the paper's", () => {
    const svg = figure4Svg({ clearingS, paper: PAPER_CLEARING_S, binWidthS: 5 });
    const { elements, texts } = parseSvg(svg);
    // ours: n 10, mean 11.89, median 10.25, p90 18.5, max 30.3
    expect(texts).to.include.members(["10", "11.89", "10.25", "18.50", "30.30"]);
    expect(texts).to.include.members(["11.79", "11", "23", "38", "46.74", "paper", "this run"]);
    expect(texts).to.include("clearing time (s), bins of 5 s");
    // bins [0,5) 2, [5,10) 3, [10,15) 3, [15,20) 1, [20,25) 0, [25,30) 0, [30,35] 1: five bars
    const bars = elements.filter((e) => e === "rect").length - 3; // background, frame, legend box
    expect(bars).to.equal(5);
  });

  it("says so when nothing cleared", () => {
    const { texts } = parseSvg(figure4Svg({ clearingS: [], paper: PAPER_CLEARING_S }));
    expect(texts).to.include("no cleared offers");
  });
});

describe("figures # PNG", () => {
  const svg = figure4Svg({ clearingS: [2.5, 4.1, 7.25, 9, 11, 30.25], paper: PAPER_CLEARING_S });

  it("renders the figure's size, the same bytes every time", () => {
    const a = rasterize(svg);
    expect(pngSize(a.png)).to.deep.equal({ width: 960, height: 540 });
    expect(
      a.png.equals(rasterize(figure4Svg({ clearingS: [2.5, 4.1, 7.25, 9, 11, 30.25], paper: PAPER_CLEARING_S })).png),
    ).to.equal(true);
  });

  it("renders text with the shipped font, whatever family the SVG asks for", () => {
    const page = (body: string) => `<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">${body}</svg>`;
    const blank = rasterize(page(""));
    for (const family of ["DejaVu Sans", "No Such Font"]) {
      const inked = rasterize(page(`<text x="4" y="28" font-family="${family}" font-size="24">11.79</text>`));
      expect(inked.rgba.equals(blank.rgba), family).to.equal(false);
    }
  });

  it("matches the bytes pinned for resvg 2.6.2 and DejaVu Sans 2.37 (any machine)", () => {
    // If @resvg/resvg-js or analysis/assets/DejaVuSans.ttf changes, regenerate these on purpose.
    expect(sha256(svg)).to.equal("1c70dd130af55fbd3babe965af4b12e72605f1417579ed2d6b6ae9295164ee7b");
    expect(sha256(rasterize(svg).png)).to.equal("d886f70ff59b9dc04b4e9625a53f7502999d75f144792f836958efbf15ce88d3");
  });

  it("writes .svg and .png beside each other", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petra-figures-"));
    const files = writeFigure(svg, path.join(dir, "sub", "figure-4"));
    expect(files).to.deep.equal({
      svg: path.join(dir, "sub", "figure-4.svg"),
      png: path.join(dir, "sub", "figure-4.png"),
    });
    expect(fs.readFileSync(files.svg, "utf8")).to.equal(svg);
    expect(fs.readFileSync(files.png).equals(rasterize(svg).png)).to.equal(true);
  });
});
