import type { SimProgress } from "./sim-runner";

/**
 * A one-line progress bar on stderr: redrawn in place on a terminal, a line every 10% otherwise
 * (CI logs, files).
 */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): (p: SimProgress) => void {
  let lastTenth = -1;
  return (p) => {
    const pct = Math.floor(p.fraction * 100);
    const width = 30;
    const filled = Math.round(p.fraction * width);
    const line = `${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${String(pct).padStart(3)}%  sim ${clockText(p.simulatedMs)}  ${p.transactions} tx  ${(p.wallMs / 1000).toFixed(0)} s`;
    if (stream.isTTY) {
      stream.write(`\r${line}${p.fraction >= 1 ? "\n" : ""}`);
    } else if (Math.floor(pct / 10) !== lastTenth) {
      lastTenth = Math.floor(pct / 10);
      stream.write(`${line}\n`);
    }
  };
}

function clockText(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}
