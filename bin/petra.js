#!/usr/bin/env node
// Entry point of `npx petra`. Loads Hardhat with the project's config (wherever the user stands),
// makes sure the contracts and their typed bindings are compiled, then hands over to the
// TypeScript CLI in analysis/cli.ts.
const path = require("node:path");

const root = path.resolve(__dirname, "..");
process.env.HARDHAT_CONFIG = path.join(root, "hardhat.config.ts");
process.env.TS_NODE_PROJECT = path.join(root, "tsconfig.json");
process.env.TS_NODE_TRANSPILE_ONLY = "true";

require("ts-node").register({ transpileOnly: true, project: process.env.TS_NODE_PROJECT });

async function run() {
  const cwd = process.cwd();
  process.chdir(root);
  const hre = require("hardhat");
  await hre.run("compile", { quiet: true });
  process.chdir(cwd);
  const { main } = require(path.join(root, "analysis", "cli.ts"));
  return main(process.argv);
}

run().then(
  (code) => process.exit(code ?? 0),
  (err) => {
    const detail = err?.code ? ` [${err.code}]` : "";
    console.error(`petra: ${err?.message ?? err}${detail}`);
    if (process.env.PETRA_DEBUG) console.error(err);
    process.exit(1);
  },
);
