import { Command, CommanderError } from "commander";
import { attackCommand } from "./command-attack";
import { demoCommand } from "./command-demo";
import { liveCommand } from "./command-live";
import { reproduceCommand } from "./command-reproduce";
import { simCommand } from "./command-sim";

/**
 * The `petra` command line. Each command lives in its own `command-<name>.ts` and exports a
 * function that builds a commander Command; register it here.
 */
export function buildCli(): Command {
  const program = new Command("petra")
    .description("PETra privacy lab: run the PETra energy market, switch privacy defences, attack and measure.")
    .showHelpAfterError()
    .exitOverride();
  program.addCommand(demoCommand());
  program.addCommand(liveCommand());
  program.addCommand(simCommand());
  program.addCommand(reproduceCommand());
  program.addCommand(attackCommand());
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildCli().parseAsync(argv);
    return 0;
  } catch (e) {
    // commander already printed help or the usage error
    if (e instanceof CommanderError) return e.exitCode;
    throw e;
  }
}
