import * as fs from "node:fs";
import * as path from "node:path";
import { Command } from "commander";
import { resolveOut, withOut, withSeed } from "./cli-options";
import { progressBar } from "./progress";
import { CALIBRATION_FILE, calibrate, reproduce } from "./reproduce";

export function reproduceCommand(): Command {
  const cmd = new Command("reproduce").description(
    "reproduce the PETra paper's evaluation: the case study in simulated mode with a block time fitted to the paper's mean clearing time; writes the run directory, summary.json (ours beside the paper's) and Figures 3 and 4 (SVG, PNG)",
  );
  withSeed(withOut(cmd, "runs/reproduce"))
    .option(
      "--calibrate",
      `fit the block time again (a grid of simulated runs, a few minutes) and write ${path.relative(process.cwd(), CALIBRATION_FILE)}`,
    )
    .option("--no-progress", "no progress bar")
    .action(async (opts: { out: string; seed: number; calibrate?: boolean; progress: boolean }) => {
      const outDir = resolveOut(opts.out);
      const log = (l: string) => console.log(l);
      let calibration: Awaited<ReturnType<typeof calibrate>> | undefined;
      if (opts.calibrate) {
        log("calibrating the block time to the paper's mean clearing time (11.79 s)");
        calibration = await calibrate({ outDir: path.join(outDir, "calibration"), log });
        fs.writeFileSync(CALIBRATION_FILE, `${JSON.stringify(calibration, null, 2)}\n`);
        log(`fitted ${calibration.blocks}; written to ${CALIBRATION_FILE}`);
      }
      await reproduce({
        outDir,
        seed: opts.seed,
        calibration,
        onProgress: opts.progress ? progressBar("reproduce") : undefined,
        log,
      });
      console.log(`run directory: ${outDir}`);
    });
  return cmd;
}
