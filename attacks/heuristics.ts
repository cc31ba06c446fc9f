import type { Heuristic, HeuristicName } from "./heuristic";
import { assetShape } from "./heuristic-asset-shape";
import { behaviour } from "./heuristic-behaviour";
import { deskView } from "./heuristic-desk-view";
import { dsoView } from "./heuristic-dso-view";
import { gasFunding } from "./heuristic-gas-funding";
import { mintBatch } from "./heuristic-mint-batch";
import { mixerMatching } from "./heuristic-mixer";
import { networkObserver } from "./heuristic-network";

/** Every heuristic with its default settings, in the order reports list them. */
export function allHeuristics(): Heuristic[] {
  return [gasFunding, mintBatch, assetShape(), behaviour(), networkObserver, mixerMatching(), dsoView, deskView];
}

export const HEURISTIC_NAMES: HeuristicName[] = allHeuristics().map((h) => h.name);
