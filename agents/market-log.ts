import { AbiCoder, concat, type EventFragment, type ParamType, Result } from "ethers";
import { EnergyMarket__factory } from "../typechain-types";

const MARKET = EnergyMarket__factory.createInterface();
const CODER = AbiCoder.defaultAbiCoder();

interface EventDecoder {
  name: string;
  inputs: readonly ParamType[];
  indexed: ParamType[];
  plain: ParamType[];
}

/**
 * By topic, computed once. ethers' Interface.parseLog finds the event by hashing every event
 * signature of the ABI again on each call, and decodeEventLog hashes the one it found again to
 * check it: a dozen Keccak hashes per log, for logs that every agent of a simulation (the DSO,
 * each household, the ledger) decodes.
 */
const DECODERS = new Map<string, EventDecoder>();
MARKET.forEachEvent((e: EventFragment) => {
  DECODERS.set(e.topicHash.toLowerCase(), {
    name: e.name,
    inputs: e.inputs,
    indexed: e.inputs.filter((p) => p.indexed),
    plain: e.inputs.filter((p) => !p.indexed),
  });
});

/**
 * An EnergyMarket log decoded as `MARKET.parseLog` decodes it (the event's name and its arguments,
 * by position and by name; tested equal), or null for a log that is none of the market's events
 * or does not decode. Every indexed argument of the market's events is a value type, so topics
 * hold the values themselves.
 */
export function decodeMarketLog(log: {
  topics: readonly string[];
  data: string;
}): { name: string; args: Result } | null {
  const topic = log.topics[0];
  const d = topic === undefined ? undefined : DECODERS.get(topic.toLowerCase());
  if (d === undefined || log.topics.length !== d.indexed.length + 1) return null;
  try {
    const indexed = d.indexed.length === 0 ? [] : CODER.decode(d.indexed, concat(log.topics.slice(1)));
    const plain = CODER.decode(d.plain, log.data);
    let i = 0;
    let p = 0;
    const values = d.inputs.map((input) => (input.indexed ? indexed[i++] : plain[p++]));
    return {
      name: d.name,
      args: Result.fromItems(
        values,
        d.inputs.map((input) => input.name),
      ),
    };
  } catch {
    return null;
  }
}
